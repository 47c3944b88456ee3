-- wrk's report as one JSON line (bench/loadgen.py reads it): totals, every error class, and
-- the latency distribution as percentiles (microseconds) for the plots.
--
-- With arguments `post PREFIX CATEGORY` every request instead creates one catalog item (a
-- single POST, a unique sku per request): the write load of the sizing benchmark. With
-- `adjust` every request is the URL's POST `{"delta": 1}` (adjust_stock: a row lock each).

local threads = 0
setup = function(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

init = function(args)
  if args[1] == "post" then
    local prefix, category, n = args[2] .. "-" .. thread_id, args[3], 0
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    request = function()
      n = n + 1
      local body = string.format(
        '{"sku":"%s-%d","name":"sizing","price":"1.00","stock":1,"category":"%s"}',
        prefix, n, category)
      return wrk.format(nil, nil, nil, body)
    end
  elseif args[1] == "adjust" then
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    wrk.body = '{"delta":1}'
  end
end
done = function(summary, latency, requests)
  local points = {}
  local qs = {0.1, 1, 5, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 95, 97.5, 99, 99.5, 99.9, 99.99, 100}
  for _, q in ipairs(qs) do
    table.insert(points, string.format('"%s":%d', tostring(q), latency:percentile(q)))
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"max":%d,"mean":%.1f,"stdev":%.1f,"percentiles":{%s}}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency.stdev, table.concat(points, ",")))
end
