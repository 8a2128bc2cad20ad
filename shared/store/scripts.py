"""Lua scripts run atomically by Redis: one round trip each, no interleaving with other workers."""

from __future__ import annotations

# Append turns (user, assistant pairs) exactly once and in order.
# KEYS: [1] the conversation list, [2] its seen-ids sorted set (turn id -> at), [3] its tombstone.
# ARGV: ttl, max turns, ids to remember, then (id, at, json) for each turn.
# - A turn whose id is already known is skipped: a write that timed out but landed, sent again.
# - A turn no newer than the tombstone (the time of the last delete) is skipped: a delete stays
#   deleted, whoever still holds turns from before it (a flush in flight, another worker's queue).
# - An exchange older than the list's tail (held by a worker while Redis was away) is inserted
#   before the first newer exchange, so the list stays ordered by the time of each exchange.
# - The list keeps the last `max` turns, then drops leading assistant turns: whole exchanges only.
APPEND = """
local function turn(raw)  -- a list item that is not a turn (written by hand?) must not stop every write
  local ok, t = pcall(cjson.decode, raw)
  if ok and type(t) == 'table' then return t end
  return {role = 'user', at = 0}
end
local ttl, max, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local gone = tonumber(redis.call('GET', KEYS[3]) or '')
local written, pivot = 0, false
for i = 4, #ARGV, 3 do
  local id, at, item = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  if (not gone or at > gone) and not redis.call('ZSCORE', KEYS[2], id) then
    if turn(item).role == 'user' then
      pivot = false
      local j = -1
      while true do
        local other = redis.call('LINDEX', KEYS[1], j)
        if not other then break end
        local t = turn(other)
        if (tonumber(t.at) or 0) <= at then break end
        if t.role == 'user' then pivot = other end
        j = j - 1
      end
    end
    if pivot then
      redis.call('LINSERT', KEYS[1], 'BEFORE', pivot, item)
    else
      redis.call('RPUSH', KEYS[1], item)
    end
    redis.call('ZADD', KEYS[2], at, id)
    written = written + 1
  end
end
redis.call('LTRIM', KEYS[1], -max, -1)
while true do
  local first = redis.call('LINDEX', KEYS[1], 0)
  if not first or turn(first).role == 'user' then break end
  redis.call('LPOP', KEYS[1])
end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -keep - 1)
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return written
"""

# The last turns and the tombstone in one round trip: a reader drops what it still holds from
# before a delete. KEYS: [1] the list, [2] the tombstone. ARGV: the LRANGE start (-limit).
READ = """
return {redis.call('GET', KEYS[2]) or '', redis.call('LRANGE', KEYS[1], ARGV[1], -1)}
"""

# Delete a conversation and leave a tombstone: the time of the delete (the later one is kept), so
# APPEND never writes a turn from before it. Its lifetime is the conversation TTL.
# KEYS: the list, the seen set, the tombstone. ARGV: the delete's time, ttl. Returns keys deleted.
DELETE = """
local at, prev = ARGV[1], redis.call('GET', KEYS[3])
if prev and tonumber(prev) and tonumber(prev) > tonumber(at) then at = prev end
redis.call('SET', KEYS[3], at, 'EX', ARGV[2])
return redis.call('DEL', KEYS[1], KEYS[2])
"""

# GET with LRU bookkeeping and shared hit/miss counters in one round trip.
CACHE_GET = """
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('ZADD', KEYS[2], ARGV[1], KEYS[1]); redis.call('INCR', KEYS[3])
else
  redis.call('ZREM', KEYS[2], KEYS[1]); redis.call('INCR', KEYS[4])
end
return v
"""

# A hit CACHE_GET counted whose body the reader could not use (another format, damaged): a miss.
CACHE_UNREADABLE = """
redis.call('DECR', KEYS[1]); redis.call('INCR', KEYS[2])
return 1
"""

# SET with TTL, index it, drop index entries idle past the TTL, evict least recently used beyond the bound.
CACHE_PUT = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3] - ARGV[2])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if excess > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  for _, k in ipairs(old) do redis.call('DEL', k) end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
end
return 1
"""

CACHE_CLEAR = """
local keys = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, k in ipairs(keys) do redis.call('DEL', k) end
redis.call('DEL', KEYS[1])
return #keys
"""
