-- wrk script for benchmarks/serve.py: POST the JSON body in the file named after "--" to /predict,
-- and print one line the benchmark parses (requests, non-2xx, socket errors, seconds, p50/p99 in µs).
--
--     wrk -t1 -c8 -d2s --latency -s benchmarks/serve_load.lua http://127.0.0.1:PORT/predict -- body.json

local request_text

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local body = file:read("*a")
  file:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  request_text = wrk.format(nil, nil, nil, body)
end

function request()
  return request_text
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "FLYWHEEL requests=%d non2xx=%d socket_errors=%d seconds=%.6f p50_us=%d p99_us=%d\n",
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    summary.duration / 1e6, latency:percentile(50.0), latency:percentile(99.0)))
end
