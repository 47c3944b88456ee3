-- Included first by the presence scripts (myproject.realtime.presence). A group's presence:
-- KEYS[1] its sockets (a sorted set: "<user>|<socket>" -> expiry in ms), KEYS[2] its users
-- (a hash: user -> sockets), KEYS[3] their names (a hash: user -> name). Each daphne renews its
-- sockets' entries; those of a daphne that died expire.

local function now_ms()
  local now = redis.call('TIME')
  return now[1] * 1000 + math.floor(now[2] / 1000)
end

-- Drop the expired sockets; the users whose last socket that was, as user, name, user, name...
local function expire(ms)
  local left = {}
  local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ms)
  if #gone > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
    for _, member in ipairs(gone) do
      local user = string.match(member, '^([^|]+)|')
      if user and redis.call('HINCRBY', KEYS[2], user, -1) <= 0 then
        table.insert(left, user)
        table.insert(left, redis.call('HGET', KEYS[3], user) or '')
        redis.call('HDEL', KEYS[2], user)
        redis.call('HDEL', KEYS[3], user)
      end
    end
  end
  return left
end

local function keep_alive(ttl)
  for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ttl) end
end
