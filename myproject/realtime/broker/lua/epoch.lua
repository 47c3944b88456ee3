-- Included first by every script that may find a topic without an epoch (publish, position).
-- KEYS[1]: the topic's meta hash (e: epoch, s: last seq, g: GTID of its writes), KEYS[2]: its
-- stream (the history), KEYS[3]: its idempotency keys (a sorted set: key -> seq).
--
-- A topic without an epoch starts a new one at 0, with no history and no keys: what is left of
-- a lost epoch (a stream, keys) belongs to another numbering.
local function current_epoch(candidate)
  local epoch = redis.call('HGET', KEYS[1], 'e')
  if not epoch then
    epoch = candidate
    redis.call('HSET', KEYS[1], 'e', epoch, 's', 0)
    redis.call('DEL', KEYS[2], KEYS[3])
  end
  return epoch
end
