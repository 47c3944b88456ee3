-- wrk's result as one JSON line for bench/http.py. Arguments: `token TOKEN` signs every
-- request in (an Authorization header), as a client of the API would be.
init = function(args)
  if args[1] == "token" then
    wrk.headers["Authorization"] = "Token " .. args[2]
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"us":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
