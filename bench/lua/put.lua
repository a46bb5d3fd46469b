-- PUT 4 KiB (or whatever size the body file has) bodies that are all different:
-- the first 16 bytes are a token drawn for this run, the thread and a per-request counter in
-- hex, the rest comes from the body file, so that a content-addressed store cannot deduplicate
-- them, not even against an earlier run's (the warm-up's) bodies.
--   unique paths:  ... -s put.lua URL -- unique /v1/files/bench/s/ body.bin "Bearer KEY"
--   one path:      ... -s put.lua URL -- same /v1/files/bench/one body.bin "Bearer KEY" classes
-- "classes" also counts responses by status class (2xx/4xx/5xx; a little
-- slower: wrk then parses every response for this callback).
-- Thread 1 writes <prefix>0, <prefix>1, ... in order (the suite runs -t1, so
-- the first files of a run are its seeds); other threads add "t<id>-".
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local mode, prefix, rest

setup = common.setup
done = common.done

function init(args)
  mode = args[1]
  prefix = args[2]
  local f = assert(io.open(args[3], "rb"))
  rest = f:read("*a"):sub(17)
  f:close()
  local r = assert(io.open("/dev/urandom", "rb"))
  local b1, b2 = r:read(2):byte(1, 2)
  r:close()
  token = b1 * 256 + b2
  common.auth(args[4])
  if id > 1 and mode == "unique" then
    prefix = prefix .. "t" .. id .. "-"
  end
  generated = 0
  if args[5] == "classes" then
    n2xx, n3xx, n4xx, n5xx = 0, 0, 0, 0
    -- Defined here, so that runs without "classes" keep wrk's faster path.
    response = function(status)
      if status >= 500 then n5xx = n5xx + 1
      elseif status >= 400 then n4xx = n4xx + 1
      elseif status >= 300 then n3xx = n3xx + 1
      else n2xx = n2xx + 1 end
    end
  end
end

function request()
  local n = generated
  generated = generated + 1
  local body = string.format("%04x%03x%08x\n", token, id % 4096, n) .. rest
  local path = prefix
  if mode == "unique" then
    path = prefix .. n
  end
  return wrk.format("PUT", path, nil, body)
end
