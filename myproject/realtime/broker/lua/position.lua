-- The topic's position, and the GTID that covers its frames' writes.
-- ARGV: [1] epoch candidate, [2] history TTL (ms), [3] meta TTL (ms).
-- A topic that has frames keeps its epoch for the meta TTL (days: positions stay comparable
-- over quiet nights); one that never had any lives as long as a history would (a handshake to
-- a new name leaves nothing behind for long).
local epoch = current_epoch(ARGV[1])
local seq = tonumber(redis.call('HGET', KEYS[1], 's'))
if seq == 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {epoch, seq, redis.call('HGET', KEYS[1], 'g') or ''}
