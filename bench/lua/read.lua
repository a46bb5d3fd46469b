-- GET (or HEAD, though wrk 4.1 cannot parse HEAD responses) of random seeded
-- files: <prefix><n> with n in [0, count); count 0 means the prefix itself.
--   wrk -t1 -c32 -d8s -s read.lua https://127.0.0.1:PORT -- GET /v1/files/bench/s/ 2000 "Bearer KEY"
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local method, prefix, count

setup = common.setup
done = common.done

function init(args)
  method = args[1]
  prefix = args[2]
  count = tonumber(args[3])
  common.auth(args[4])
  math.randomseed(os.time() + id)
  generated = 0
end

function request()
  generated = generated + 1
  if count == 0 then
    return wrk.format(method, prefix)
  end
  return wrk.format(method, prefix .. math.random(0, count - 1))
end
