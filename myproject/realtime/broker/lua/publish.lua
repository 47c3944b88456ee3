-- Number, keep and announce one frame of a topic: the one place a seq is given.
-- ARGV: [1] payload, [2] epoch candidate, [3] history size, [4] history TTL (ms),
-- [5] meta TTL (ms), [6] pub/sub channel, [7] '1' to PUBLISH now ('0': the caller publishes
-- once a replica holds the frame), [8] GTID of the frame's database write ('' if none),
-- [9] idempotency key ('' if none), [10] how many of the topic's latest frames keep their key.
-- Returns {epoch, seq, 1 if the key was seen before (the frame kept its first seq) else 0}.
local epoch = current_epoch(ARGV[2])
local key = ARGV[9]
if key ~= '' then
  local seen = redis.call('ZSCORE', KEYS[3], key)
  if seen then
    return {epoch, tonumber(seen), 1}
  end
end
local seq = redis.call('HINCRBY', KEYS[1], 's', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], seq .. '-0', 'p', ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if key ~= '' then
  redis.call('ZADD', KEYS[3], seq, key)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', seq - tonumber(ARGV[10]))
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
end
-- With database replicas, field g covers the writes of every frame so far: the highest GTID of
-- each replication domain ("domain-server-seq", comma-separated). Relays of several processes
-- may publish out of the order in which they read their GTIDs, hence a merge, not a set. A REST
-- read at a position waits for a replica to have applied g (X-Stream-Position).
if ARGV[8] ~= '' then
  local best, order = {}, {}
  for gtid in string.gmatch((redis.call('HGET', KEYS[1], 'g') or '') .. ',' .. ARGV[8], '[^,]+') do
    local domain, number = string.match(gtid, '^(%d+)-%d+-(%d+)$')
    if domain then
      if not best[domain] then
        table.insert(order, domain)
        best[domain] = gtid
      elseif tonumber(number) > tonumber(string.match(best[domain], '(%d+)$')) then
        best[domain] = gtid
      end
    end
  end
  local merged = {}
  for _, domain in ipairs(order) do table.insert(merged, best[domain]) end
  redis.call('HSET', KEYS[1], 'g', table.concat(merged, ','))
end
if ARGV[7] == '1' then
  redis.call('PUBLISH', ARGV[6], epoch .. ' ' .. seq .. ' ' .. ARGV[1])
end
return {epoch, seq, 0}
