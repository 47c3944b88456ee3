-- Start a new epoch if the topic is still in a stale one (its numbering went back in time).
-- KEYS: [1] meta hash, [2] stream, [3] idempotency keys. ARGV: [1] stale epoch, [2] new
-- epoch, [3] meta TTL (ms). Returns the position after: {epoch, seq}.
local epoch = redis.call('HGET', KEYS[1], 'e')
if epoch == false or epoch == ARGV[1] then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[1], 'e', epoch, 's', 0)
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {epoch, tonumber(redis.call('HGET', KEYS[1], 's'))}
