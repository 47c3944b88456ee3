-- Take one of a user's socket places (myproject.realtime.quotas), if one is left.
-- KEYS: [1] the user's sorted set (member: socket id, score: the place's expiry in ms).
-- ARGV: [1] the socket's id, [2] the cap, [3] the place's TTL (ms).
-- Expired places (a daphne that died) are dropped first; Redis's own clock: daphne hosts need
-- not agree on the time. Returns 1 if taken.
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
