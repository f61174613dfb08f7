"""The Lua side of the Redis job store: every change to a job is one script call.

Layout (keys start with the store's prefix, `{gg}:` by default, a hash tag, so a clustered
Redis keeps them in one slot):

    job:<id>           hash   the fields of `infra.jobs.rules.to_fields` (numbers as %.17g text)
    jobs:due           zset   ids of jobs a runner may claim, scored by when: a queued job by its
                              creation, a claimed one by its claim's expiry, a job between steps
                              by when its next step is due; finished jobs leave it
    jobs:own:<owner>   zset   one owner's ids scored by creation time (ties: by id)

A claim checks the claim id it was given, so a runner whose claim was taken over cannot write.
"""

from __future__ import annotations

COMMON = r"""
local P = ARGV[1]
local function f(x) return string.format('%.17g', x) end
local function jkey(id) return P .. 'job:' .. id end
local function dump(k)
  return redis.call('HGETALL', k)
end
"""

CREATE = (
    COMMON
    + r"""
-- ARGV: P, id, owner, created_at, then field/value pairs
local id, owner, created = ARGV[2], ARGV[3], tonumber(ARGV[4])
local k = jkey(id)
if redis.call('EXISTS', k) == 0 then
  local pairs_ = {}
  for i = 5, #ARGV do pairs_[#pairs_ + 1] = ARGV[i] end
  redis.call('HSET', k, unpack(pairs_))
  redis.call('ZADD', P .. 'jobs:due', created, id)
  redis.call('ZADD', P .. 'jobs:own:' .. owner, created, id)
end
return dump(k)
"""
)

CLAIM = (
    COMMON
    + r"""
-- ARGV: P, id, now, ttl, max_attempts, claim_id, abandoned code, abandoned message (%d: attempts)
local id, now, ttl, max_attempts, claim_id = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local k = jkey(id)
local a = redis.call('HMGET', k, 'status', 'attempts', 'claim_id', 'claim_expires_at')
local status = a[1]
if not status then return {} end
local attempts, held, expires = tonumber(a[2]) or 0, a[3] or '', tonumber(a[4]) or 0
local attempt
if status == 'queued' then
  attempt = attempts + 1
elseif status ~= 'in_progress' or expires > now then
  return {}
elseif held == '' then
  attempt = math.max(attempts, 1)
elseif attempts >= max_attempts then
  redis.call('HSET', k, 'status', 'failed', 'error_code', ARGV[7],
    'error_message', string.format(ARGV[8], attempts),
    'completed_at', f(now), 'updated_at', f(now), 'claim_id', '')
  redis.call('ZREM', P .. 'jobs:due', id)
  return {}
else
  attempt = attempts + 1
end
local until_ = now + ttl
redis.call('HSET', k, 'status', 'in_progress', 'attempts', attempt, 'claim_id', claim_id,
  'claim_expires_at', f(until_), 'updated_at', f(now))
redis.call('ZADD', P .. 'jobs:due', until_, id)
return {tostring(attempt), f(until_)}
"""
)

UPDATE = (
    COMMON
    + r"""
-- ARGV: P, id, claim_id, op, now, then per op:
--   progress: progress, ttl, state ('' keeps it)   advance: progress, state, due_at
--   complete: result                                 fail: code, message
local id, claim_id, op, now = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local k = jkey(id)
local a = redis.call('HMGET', k, 'status', 'claim_id', 'progress')
if a[1] ~= 'in_progress' or a[2] ~= claim_id then return 0 end
local old = tonumber(a[3]) or 0
if op == 'progress' then
  local until_ = now + tonumber(ARGV[7])
  redis.call('HSET', k, 'progress', math.max(old, tonumber(ARGV[6])), 'claim_expires_at', f(until_),
    'updated_at', f(now))
  if ARGV[8] ~= '' then redis.call('HSET', k, 'state', ARGV[8]) end
  redis.call('ZADD', P .. 'jobs:due', until_, id)
elseif op == 'advance' then
  local due_at = tonumber(ARGV[8])
  redis.call('HSET', k, 'progress', math.max(old, tonumber(ARGV[6])), 'state', ARGV[7], 'claim_id', '',
    'claim_expires_at', f(due_at), 'updated_at', f(now))
  redis.call('ZADD', P .. 'jobs:due', due_at, id)
elseif op == 'complete' then
  redis.call('HSET', k, 'status', 'completed', 'progress', 100, 'result', ARGV[6], 'completed_at', f(now),
    'updated_at', f(now), 'claim_id', '')
  redis.call('ZREM', P .. 'jobs:due', id)
elseif op == 'fail' then
  redis.call('HSET', k, 'status', 'failed', 'error_code', ARGV[6], 'error_message', ARGV[7],
    'completed_at', f(now), 'updated_at', f(now), 'claim_id', '')
  redis.call('ZREM', P .. 'jobs:due', id)
else
  return redis.error_reply('unknown op ' .. op)
end
return 1
"""
)

LIST = (
    COMMON
    + r"""
-- ARGV: P, owner, after ('' for the start), limit, order ('asc' | 'desc')
local idx = P .. 'jobs:own:' .. ARGV[2]
local after, limit, desc = ARGV[3], tonumber(ARGV[4]), ARGV[5] == 'desc'
local start = 0
if after ~= '' then
  local rank
  if desc then rank = redis.call('ZREVRANK', idx, after) else rank = redis.call('ZRANK', idx, after) end
  if not rank then return {} end
  start = rank + 1
end
local ids
if desc then ids = redis.call('ZREVRANGE', idx, start, start + limit - 1)
else ids = redis.call('ZRANGE', idx, start, start + limit - 1) end
local out = {}
for _, id in ipairs(ids) do out[#out + 1] = dump(jkey(id)) end
return out
"""
)

DELETE = (
    COMMON
    + r"""
-- ARGV: P, id
local id = ARGV[2]
local k = jkey(id)
local owner = redis.call('HGET', k, 'owner')
if not owner then return 0 end
redis.call('DEL', k)
redis.call('ZREM', P .. 'jobs:due', id)
redis.call('ZREM', P .. 'jobs:own:' .. owner, id)
return 1
"""
)
