-- The frames of an epoch after a seq (up to another), with the current position.
-- KEYS: [1] meta hash, [2] stream. ARGV: [1] epoch, [2] after, [3] until (-1: the end).
-- Returns {epoch or '', last seq, entries or false when the epoch is another}.
local epoch = redis.call('HGET', KEYS[1], 'e')
local top = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
if epoch ~= ARGV[1] then
  return {epoch or '', top, false}
end
local after, last = tonumber(ARGV[2]), tonumber(ARGV[3])
if last < 0 or last > top then last = top end
if after >= last then
  return {epoch, top, {}}
end
return {epoch, top, redis.call('XRANGE', KEYS[2], (after + 1) .. '-0', last .. '-0')}
