-- Push the expiry of a process's socket places a TTL ahead (places a Redis restart lost are
-- taken again). KEYS: one user's sorted set per place. ARGV: [1] the TTL (ms), then the sockets'
-- ids, in KEYS' order.
local now = redis.call('TIME')
local until_ms = now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, until_ms, ARGV[i + 1])
  redis.call('PEXPIRE', key, tonumber(ARGV[1]))
end
return #KEYS
