-- Shared by the suite's wrk scripts (loaded with dofile from the script's own
-- folder): thread numbering, the Authorization header, and a machine-readable
-- summary line that bench/load/wrk.ts parses instead of wrk's text report.

local common = {}

local threads = {}
local next_id = 0

-- Main state: number the threads so that each one can keep its own paths.
function common.setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end

-- Thread state: "auth" is the Authorization header value, "-" for none.
function common.auth(value)
  if value ~= nil and value ~= "-" then
    wrk.headers["Authorization"] = value
  end
end

-- Counters a script keeps per thread (for example how many PUTs it generated).
function common.sum(name)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + (t:get(name) or 0)
  end
  return total
end

-- One line: BENCH_JSON {...}. Latencies are in microseconds; the nNxx status
-- classes are counted only by scripts that ask for them (else 0).
function common.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,"generated":%d,' ..
    '"n2xx":%d,"n3xx":%d,"n4xx":%d,"n5xx":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    common.sum("generated"), common.sum("n2xx"), common.sum("n3xx"), common.sum("n4xx"), common.sum("n5xx")))
end

return common
