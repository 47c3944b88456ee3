-- A socket joins. ARGV: [1] "<user>|<socket>", [2] user, [3] name, [4] TTL (ms).
-- Returns {1 if it is the user's first socket in the group, the users that left meanwhile}.
local ms, ttl = now_ms(), tonumber(ARGV[4])
local left = expire(ms)
local first = 0
if redis.call('ZADD', KEYS[1], ms + ttl, ARGV[1]) == 1
   and redis.call('HINCRBY', KEYS[2], ARGV[2], 1) == 1 then
  first = 1
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
keep_alive(ttl)
return {first, left}
