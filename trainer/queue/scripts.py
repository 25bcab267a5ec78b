"""The Lua scripts of the work queue: every state change is one of these, run atomically.

All scripts take the same KEYS, in this order (see `trainer.queue.QueueKeys`):

1. pending  - sorted set, date -> YYYYMMDD, so the earliest date pops first
2. leased   - sorted set, date -> lease deadline in ms (Redis `TIME`), scanned by the reaper
3. holders  - hash, date -> JSON {token, holder, deadline, attempt}
4. attempts - hash, date -> number of times the date was handed out (releases excluded)
5. dead     - hash, date (or unreadable item) -> JSON {reason, attempts}
6. done     - set of dates whose step completed
7. legacy   - the GKE sample's list (`rpush datasets datasets/training/2018-04-01.pkl`)
8. reasons  - hash, date -> last failure reason (kept for the dead-letter entry)

Deadlines come from Redis `TIME`, never from a worker's clock, so a worker whose clock is
off (or that was paused) cannot extend or shorten anybody's lease.
"""

from __future__ import annotations

PRELUDE = r"""
local pending, leased, holders, attempts = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local dead, done, legacy, reasons = KEYS[5], KEYS[6], KEYS[7], KEYS[8]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- 'YYYY-MM-DD' -> YYYYMMDD (a score that sorts by date), nil if not a date
local function date_score(d)
  local y, m, dd = string.match(d, '^(%d%d%d%d)%-(%d%d)%-(%d%d)$')
  if not y then return nil end
  return tonumber(y .. m .. dd)
end

local function known(d)
  return redis.call('ZSCORE', pending, d) or redis.call('ZSCORE', leased, d)
      or redis.call('SISMEMBER', done, d) == 1 or redis.call('HEXISTS', dead, d) == 1
end

-- the lease record of d if `token` holds it, else nil
local function held(d, token)
  local raw = redis.call('HGET', holders, d)
  if not raw then return nil end
  local info = cjson.decode(raw)
  if info.token ~= token then return nil end
  return info
end

local function lost(d)
  local raw = redis.call('HGET', holders, d)
  if raw then return {'lost', cjson.decode(raw).holder} end
  if redis.call('SISMEMBER', done, d) == 1 then return {'lost', '(completed)'} end
  if redis.call('HEXISTS', dead, d) == 1 then return {'lost', '(dead-lettered)'} end
  return {'lost', ''}
end

local function drop_lease(d)
  redis.call('ZREM', leased, d)
  redis.call('HDEL', holders, d)
end

local function bury(d, reason, n)
  redis.call('HSET', dead, d, cjson.encode({reason = reason, attempts = n}))
  redis.call('HDEL', attempts, d)
  redis.call('HDEL', reasons, d)
end
"""

PUSH = PRELUDE + r"""
local added = {}
for _, d in ipairs(ARGV) do
  local score = date_score(d)
  if score and not known(d) then
    redis.call('ZADD', pending, score, d)
    table.insert(added, d)
  end
end
return added
"""

# ARGV: holder, token, lease_ms, max_attempts, serial (1: one lease at a time)
LEASE = PRELUDE + r"""
local holder, token = ARGV[1], ARGV[2]
local lease_ms, max_attempts, serial = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1'
local now = now_ms()

-- 1. adopt the sample's list: parse the date out of 'datasets/training/2018-04-01.pkl'
local items = redis.call('LRANGE', legacy, 0, -1)
if #items > 0 then
  redis.call('DEL', legacy)
  for _, item in ipairs(items) do
    local base = string.match(item, '([^/]*)$') or item
    local d = string.match(base, '^(%d%d%d%d%-%d%d%-%d%d)')
    if d and date_score(d) then
      if not known(d) then redis.call('ZADD', pending, date_score(d), d) end
    elseif redis.call('HEXISTS', dead, item) == 0 then
      redis.call('HSET', dead, item, cjson.encode({
        reason = 'queue item ' .. item .. ' names no date: expected a file name starting '
          .. 'with YYYY-MM-DD, e.g. datasets/training/2018-04-01.pkl', attempts = 0}))
    end
  end
end

-- 2. reap expired leases: back to pending, or dead-lettered after max_attempts
local expired = redis.call('ZRANGEBYSCORE', leased, '-inf', now)
for _, d in ipairs(expired) do
  local raw = redis.call('HGET', holders, d)
  local who = raw and cjson.decode(raw).holder or '?'
  drop_lease(d)
  local n = tonumber(redis.call('HGET', attempts, d) or '0')
  local reason = 'lease expired on attempt ' .. n .. ' (holder ' .. who
    .. ' died, was stopped or lost Redis past its deadline)'
  local last = redis.call('HGET', reasons, d)
  if last then reason = reason .. '; last error: ' .. last end
  if n >= max_attempts then
    bury(d, reason, n)
  else
    redis.call('HSET', reasons, d, reason)
    redis.call('ZADD', pending, date_score(d) or 0, d)
  end
end

-- 3. training is one chain: hand out nothing while another date is leased
if serial and redis.call('ZCARD', leased) > 0 then
  return {'busy', redis.call('ZRANGE', leased, 0, 0)[1]}
end

-- 4. the earliest pending date
local first = redis.call('ZPOPMIN', pending)
if #first == 0 then return {'empty'} end
local d = first[1]
local n = redis.call('HINCRBY', attempts, d, 1)
local deadline = now + lease_ms
redis.call('ZADD', leased, deadline, d)
redis.call('HSET', holders, d, cjson.encode({
  token = token, holder = holder, deadline = deadline, attempt = n}))
return {'leased', d, tostring(deadline), tostring(n)}
"""

# ARGV: date, token, lease_ms
RENEW = PRELUDE + r"""
local d, token, lease_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local info = held(d, token)
if not info then return lost(d) end
info.deadline = now_ms() + lease_ms
redis.call('ZADD', leased, info.deadline, d)
redis.call('HSET', holders, d, cjson.encode(info))
return {'ok', tostring(info.deadline)}
"""

# ARGV: date, token
COMPLETE = PRELUDE + r"""
local d, token = ARGV[1], ARGV[2]
if not held(d, token) then return lost(d) end
drop_lease(d)
redis.call('SADD', done, d)
redis.call('HDEL', attempts, d)
redis.call('HDEL', reasons, d)
return {'ok'}
"""

# ARGV: date, token, reason, permanent (1/0), max_attempts
FAIL = PRELUDE + r"""
local d, token, reason = ARGV[1], ARGV[2], ARGV[3]
local permanent, max_attempts = ARGV[4] == '1', tonumber(ARGV[5])
local info = held(d, token)
if not info then return lost(d) end
drop_lease(d)
local n = tonumber(redis.call('HGET', attempts, d) or '0')
if permanent or n >= max_attempts then
  bury(d, reason, n)
  return {'dead', tostring(n)}
end
redis.call('HSET', reasons, d, reason)
redis.call('ZADD', pending, date_score(d) or 0, d)
return {'requeued', tostring(n)}
"""

# ARGV: date, token. Gives the date back without counting the attempt (SIGTERM).
RELEASE = PRELUDE + r"""
local d, token = ARGV[1], ARGV[2]
if not held(d, token) then return lost(d) end
drop_lease(d)
local n = redis.call('HINCRBY', attempts, d, -1)
if n <= 0 then redis.call('HDEL', attempts, d) end
redis.call('ZADD', pending, date_score(d) or 0, d)
return {'ok'}
"""

RETRY_DEAD = PRELUDE + r"""
local moved = {}
local entries = redis.call('HKEYS', dead)
for _, d in ipairs(entries) do
  local score = date_score(d)
  if score then
    redis.call('HDEL', dead, d)
    if not known(d) then
      redis.call('ZADD', pending, score, d)
      table.insert(moved, d)
    end
  end
end
return moved
"""

# ARGV: dates known to be trained (from the lineage): never hand them out again
MARK_DONE = PRELUDE + r"""
local marked = {}
for _, d in ipairs(ARGV) do
  if date_score(d) and not redis.call('ZSCORE', leased, d) then
    redis.call('ZREM', pending, d)
    redis.call('HDEL', dead, d)
    redis.call('HDEL', attempts, d)
    redis.call('HDEL', reasons, d)
    if redis.call('SADD', done, d) == 1 then table.insert(marked, d) end
  end
end
return marked
"""
