-- A socket leaves. ARGV: [1] "<user>|<socket>", [2] user.
-- Returns {1 if it was the user's last socket in the group, the user's name}.
local name = redis.call('HGET', KEYS[3], ARGV[2]) or ''
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1
   and redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[2])
  return {1, name}
end
return {0, name}
