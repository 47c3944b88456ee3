-- A daphne renews its sockets of a group, and drops those that expired (a daphne that died).
-- ARGV: [1] TTL (ms), then "<user>|<socket>", user, name for each socket (none: a sweep).
-- A socket missing from the group (Redis restarted, or it expired) counts again.
-- Returns {the users that left: user, name, ...; the group's users: user, sockets, name, ...}.
local ms, ttl = now_ms(), tonumber(ARGV[1])
local left = expire(ms)
for i = 2, #ARGV, 3 do
  if redis.call('ZADD', KEYS[1], ms + ttl, ARGV[i]) == 1 then
    redis.call('HINCRBY', KEYS[2], ARGV[i + 1], 1)
  end
  redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i + 2])
end
if #ARGV > 1 then keep_alive(ttl) end
local members = {}
local counts = redis.call('HGETALL', KEYS[2])
for i = 1, #counts, 2 do
  table.insert(members, counts[i])
  table.insert(members, counts[i + 1])
  table.insert(members, redis.call('HGET', KEYS[3], counts[i]) or '')
end
return {left, members}
