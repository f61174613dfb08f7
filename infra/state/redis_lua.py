"""The Lua side of the Redis account store: every change to the pool is one script call.

Layout (all keys start with the store's prefix, `{gg}:` by default; the braces are a hash tag,
so a clustered Redis keeps every key in one slot and the scripts may touch any of them):

    acc:<id>             hash   token tier tier_source status note tags in_flight cooling_until reason
                                created_at last_used_at last_failure_at use_count fail_count
                                modes ("auto,fast,..") refreshed_at, and per mode m:
                                r:<m> remaining, t:<m> total, w:<m> window seconds, x:<m> reset at
    ids                  zset   every id, score 0: paging in id order (ZRANGEBYLEX)
    st:<status>          zset   ids by status, score 0          tier:<tier>  zset  ids by tier
    pick:<mode>:<tier>   zset   ACTIVE accounts with quota left in <mode>, scored by rank
    reset:<mode>         zset   every account with a <mode> window, scored by its reset time
    cooling              zset   COOLING accounts, scored by cooling_until
    leases               zset   lease ids scored by expiry;    lease  hash  lease id -> "<id>|<mode>"
    refresh              zset   ids scored by the time their quota refresh is due

Numbers cross the boundary as strings written with %.17g, so floats survive exactly.
"""

from __future__ import annotations

COMMON = r"""
local P = ARGV[1]
local function f(x) return string.format('%.17g', x) end
local function num(x) if x == false or x == nil then return nil end return tonumber(x) end
local STATUSES = {'active', 'cooling', 'expired', 'blocked', 'disabled'}
local LRU_EPOCH = 1704067200

local function split(s)
  local out = {}
  if s == false or s == nil or s == '' then return out end
  for part in string.gmatch(s, '[^,]+') do out[#out + 1] = part end
  return out
end

local function score(rem, inflight, last_used)
  if rem > 1048575 then rem = 1048575 end
  if inflight > 1023 then inflight = 1023 end
  if inflight < 0 then inflight = 0 end
  local lru = math.floor((last_used - LRU_EPOCH) / 60)
  if lru < 0 then lru = 0 end
  if lru > 8388607 then lru = 8388607 end
  return rem * 8589934592 + (1023 - inflight) * 8388608 + (8388607 - lru)
end

-- Bring every index entry of one account in line with its hash.
local function reindex(id)
  local k = P .. 'acc:' .. id
  local a = redis.call('HMGET', k, 'status', 'tier', 'in_flight', 'last_used_at', 'modes', 'cooling_until')
  local status, tier = a[1], a[2]
  local inflight, last_used = tonumber(a[3]), tonumber(a[4])
  for _, m in ipairs(split(a[5])) do
    local q = redis.call('HMGET', k, 'r:' .. m, 'x:' .. m)
    local r = tonumber(q[1])
    if status == 'active' and r > 0 then
      redis.call('ZADD', P .. 'pick:' .. m .. ':' .. tier, score(r, inflight, last_used), id)
    else
      redis.call('ZREM', P .. 'pick:' .. m .. ':' .. tier, id)
    end
    redis.call('ZADD', P .. 'reset:' .. m, q[2], id)
  end
  if status == 'cooling' then
    redis.call('ZADD', P .. 'cooling', a[6], id)
  else
    redis.call('ZREM', P .. 'cooling', id)
  end
  for _, s in ipairs(STATUSES) do
    if s == status then redis.call('ZADD', P .. 'st:' .. s, 0, id) else redis.call('ZREM', P .. 'st:' .. s, id) end
  end
end

local function add_mode(k, m)
  local modes = split(redis.call('HGET', k, 'modes'))
  for _, x in ipairs(modes) do if x == m then return end end
  modes[#modes + 1] = m
  table.sort(modes)
  redis.call('HSET', k, 'modes', table.concat(modes, ','))
end

-- Amortised upkeep, each step bounded by `limit`: expired leases, ended cooling, ended windows.
local function sweep(now, mode, limit)
  for _, lid in ipairs(redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', f(now), 'LIMIT', 0, limit)) do
    local v = redis.call('HGET', P .. 'lease', lid)
    redis.call('HDEL', P .. 'lease', lid)
    redis.call('ZREM', P .. 'leases', lid)
    if v then
      local id = string.match(v, '^([^|]*)|')
      local k = P .. 'acc:' .. id
      if redis.call('EXISTS', k) == 1 then
        local n = tonumber(redis.call('HGET', k, 'in_flight')) - 1
        if n < 0 then n = 0 end
        redis.call('HSET', k, 'in_flight', n)
        reindex(id)
      end
    end
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'cooling', '-inf', f(now), 'LIMIT', 0, limit)) do
    redis.call('HSET', P .. 'acc:' .. id, 'status', 'active', 'cooling_until', 0)
    reindex(id)
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'reset:' .. mode, '-inf', f(now), 'LIMIT', 0, limit)) do
    local k = P .. 'acc:' .. id
    local q = redis.call('HMGET', k, 't:' .. mode, 'w:' .. mode)
    if q[1] then
      redis.call('HSET', k, 'r:' .. mode, q[1], 'x:' .. mode, f(now + tonumber(q[2])))
      reindex(id)
    else
      redis.call('ZREM', P .. 'reset:' .. mode, id)
    end
  end
end
"""

# ARGV: prefix, mode, tiers (csv, lowest first), now, ttl, lease id, random in [0,1), window, sweep limit
LEASE = (
    COMMON
    + r"""
local mode, now, ttl, lid = ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local rnd, window, limit = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
sweep(now, mode, limit)
local pick, pick_tier
for _, tier in ipairs(split(ARGV[3])) do
  local best, ties = nil, {}
  for _, id in ipairs(redis.call('ZREVRANGE', P .. 'pick:' .. mode .. ':' .. tier, 0, window - 1)) do
    local a = redis.call('HMGET', P .. 'acc:' .. id, 'status', 'r:' .. mode, 'in_flight', 'last_used_at')
    local r = tonumber(a[2])
    if a[1] == 'active' and r and r > 0 then
      local key = {-r, tonumber(a[3]), tonumber(a[4])}
      local cmp = 0
      if best then
        for i = 1, 3 do
          if key[i] < best[i] then cmp = -1 break elseif key[i] > best[i] then cmp = 1 break end
        end
      end
      if best == nil or cmp < 0 then best, ties = key, {id}
      elseif cmp == 0 then ties[#ties + 1] = id end
    end
  end
  if best then
    pick, pick_tier = ties[math.floor(rnd * #ties) + 1], tier
    break
  end
end
if not pick then return false end
local k = P .. 'acc:' .. pick
local q = redis.call('HMGET', k, 'r:' .. mode, 'in_flight', 'token')
redis.call('HSET', k, 'r:' .. mode, tonumber(q[1]) - 1, 'in_flight', tonumber(q[2]) + 1, 'last_used_at', f(now))
redis.call('HSET', P .. 'lease', lid, pick .. '|' .. mode)
redis.call('ZADD', P .. 'leases', f(now + ttl), lid)
reindex(pick)
return {pick, q[3], pick_tier}
"""
)

# ARGV: prefix, lease id, account id, mode, now, kind, reason, cooling_until, refund (0/1),
#       has quota (0/1), remaining, total, window, reset_at
RELEASE = (
    COMMON
    + r"""
local lid, id, m, now, kind, why = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
local cu = tonumber(ARGV[8])
if redis.call('HDEL', P .. 'lease', lid) == 0 then return 0 end
redis.call('ZREM', P .. 'leases', lid)
local k = P .. 'acc:' .. id
if redis.call('EXISTS', k) == 0 then return 0 end
local a = redis.call('HMGET', k, 'status', 'in_flight', 'use_count', 'fail_count', 'r:' .. m, 't:' .. m, 'w:' .. m, 'x:' .. m)
local status = a[1]
local old_r, old_t, old_w, old_x = num(a[5]), num(a[6]), num(a[7]), num(a[8])
if ARGV[10] == '1' then
  redis.call('HSET', k, 'r:' .. m, ARGV[11], 't:' .. m, ARGV[12], 'w:' .. m, ARGV[13], 'x:' .. m, ARGV[14])
  add_mode(k, m)
elseif ARGV[9] == '1' and old_r then
  redis.call('HSET', k, 'r:' .. m, math.min(old_t, old_r + 1))
end
local inflight = tonumber(a[2]) - 1
if inflight < 0 then inflight = 0 end
redis.call('HSET', k, 'in_flight', inflight)
if kind == 'success' then
  if status ~= 'disabled' then
    status = 'active'
    redis.call('HSET', k, 'reason', '')
  end
  redis.call('HSET', k, 'status', status, 'cooling_until', 0, 'use_count', tonumber(a[3]) + 1)
elseif kind ~= 'cancelled' then
  if why == '' then why = kind end
  redis.call('HSET', k, 'fail_count', tonumber(a[4]) + 1, 'last_failure_at', f(now), 'reason', why)
  if kind == 'rate_limited' then
    if old_r then
      redis.call('HSET', k, 'r:' .. m, 0, 't:' .. m, f(old_t), 'w:' .. m, f(old_w), 'x:' .. m, f(math.max(old_x, cu)))
    end
    if status ~= 'disabled' then redis.call('HSET', k, 'status', 'cooling', 'cooling_until', f(cu)) end
  elseif kind == 'expired' or kind == 'blocked' then
    redis.call('HSET', k, 'status', kind)
  end
end
reindex(id)
return 1
"""
)

# ARGV: prefix, JSON list of {id, token, tier, tier_source, note, tags, created_at, quotas: {mode: [r, t, w, x]}}
ADD = (
    COMMON
    + r"""
local added, skipped = 0, 0
for _, a in ipairs(cjson.decode(ARGV[2])) do
  local k = P .. 'acc:' .. a.id
  if redis.call('EXISTS', k) == 1 then
    skipped = skipped + 1
  else
    added = added + 1
    redis.call('HSET', k, 'token', a.token, 'tier', a.tier, 'status', 'active', 'note', a.note, 'tags', a.tags,
      'in_flight', 0, 'cooling_until', 0, 'reason', '', 'created_at', a.created_at, 'last_used_at', 0,
      'last_failure_at', 0, 'use_count', 0, 'fail_count', 0, 'refreshed_at', 0, 'modes', '',
      'tier_source', a.tier_source)
    for m, q in pairs(a.quotas) do
      redis.call('HSET', k, 'r:' .. m, q[1], 't:' .. m, q[2], 'w:' .. m, q[3], 'x:' .. m, q[4])
      add_mode(k, m)
    end
    redis.call('ZADD', P .. 'ids', 0, a.id)
    redis.call('ZADD', P .. 'tier:' .. a.tier, 0, a.id)
    redis.call('ZADD', P .. 'refresh', 0, a.id)
    reindex(a.id)
  end
end
return {added, skipped}
"""
)

# ARGV: prefix, id, status, reason
SET_STATUS = (
    COMMON
    + r"""
local k = P .. 'acc:' .. ARGV[2]
if redis.call('EXISTS', k) == 0 then return 0 end
redis.call('HSET', k, 'status', ARGV[3], 'reason', ARGV[4], 'cooling_until', 0)
reindex(ARGV[2])
return 1
"""
)

# ARGV: prefix, id, JSON {tier?, tier_source?, note?, tags?}. A new tier moves the account between
# the tier's id set and the pick sets of each of its modes.
UPDATE = (
    COMMON
    + r"""
local id = ARGV[2]
local k = P .. 'acc:' .. id
local old = redis.call('HGET', k, 'tier')
if not old then return 0 end
local c = cjson.decode(ARGV[3])
if c.tier and c.tier ~= old then
  for _, m in ipairs(split(redis.call('HGET', k, 'modes'))) do
    redis.call('ZREM', P .. 'pick:' .. m .. ':' .. old, id)
  end
  redis.call('ZREM', P .. 'tier:' .. old, id)
  redis.call('ZADD', P .. 'tier:' .. c.tier, 0, id)
  redis.call('HSET', k, 'tier', c.tier)
end
if c.tier_source then redis.call('HSET', k, 'tier_source', c.tier_source) end
if c.note then redis.call('HSET', k, 'note', c.note) end
if c.tags then redis.call('HSET', k, 'tags', c.tags) end
if c.token then redis.call('HSET', k, 'token', c.token) end
reindex(id)
return 1
"""
)

# ARGV: prefix, id, mode, remaining, total, window, reset_at
SET_QUOTA = (
    COMMON
    + r"""
local k, m = P .. 'acc:' .. ARGV[2], ARGV[3]
if redis.call('EXISTS', k) == 0 then return 0 end
redis.call('HSET', k, 'r:' .. m, ARGV[4], 't:' .. m, ARGV[5], 'w:' .. m, ARGV[6], 'x:' .. m, ARGV[7])
add_mode(k, m)
reindex(ARGV[2])
return 1
"""
)

# ARGV: prefix, id
REMOVE = (
    COMMON
    + r"""
local id = ARGV[2]
local k = P .. 'acc:' .. id
local a = redis.call('HMGET', k, 'tier', 'modes')
if not a[1] then return 0 end
for _, m in ipairs(split(a[2])) do
  redis.call('ZREM', P .. 'pick:' .. m .. ':' .. a[1], id)
  redis.call('ZREM', P .. 'reset:' .. m, id)
end
for _, s in ipairs(STATUSES) do redis.call('ZREM', P .. 'st:' .. s, id) end
redis.call('ZREM', P .. 'cooling', id)
redis.call('ZREM', P .. 'ids', id)
redis.call('ZREM', P .. 'tier:' .. a[1], id)
redis.call('ZREM', P .. 'refresh', id)
redis.call('DEL', k)
return 1
"""
)

# ARGV: prefix, status or '', tier or '', cursor or '', limit, scan cap
# Returns {next cursor or '', HGETALL of each item as {id, flat fields...}}.
LIST = (
    COMMON
    + r"""
local status, tier, cursor, limit, cap = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local src = P .. 'ids'
if status ~= '' then src = P .. 'st:' .. status elseif tier ~= '' then src = P .. 'tier:' .. tier end
local check_tier = status ~= '' and tier ~= ''
local tagj, needle = ARGV[7] or '', ARGV[8] or ''
local function has(hay, part) return string.find(string.lower(hay or ''), part, 1, true) ~= nil end
local function keep(id)
  if not (check_tier or tagj ~= '' or needle ~= '') then return true end
  local h = redis.call('HMGET', P .. 'acc:' .. id, 'tier', 'note', 'tags')
  if check_tier and h[1] ~= tier then return false end
  local tags = h[3] or '[]'
  if tagj ~= '' and not string.find(tags, tagj, 1, true) then return false end
  if needle ~= '' and not (has(id, needle) or has(h[2], needle) or has(tags, needle)) then return false end
  return true
end
local start = '-'
if cursor ~= '' then start = '(' .. cursor end
local found, scanned, last = {}, 0, nil
while #found <= limit and scanned < cap do
  local batch = redis.call('ZRANGEBYLEX', src, start, '+', 'LIMIT', 0, 200)
  if #batch == 0 then break end
  for _, id in ipairs(batch) do
    scanned = scanned + 1
    last = id
    if keep(id) then
      found[#found + 1] = id
      if #found > limit then break end
    end
    if scanned >= cap then break end
  end
  start = '(' .. last
end
local out = {''}
local n = math.min(#found, limit)
for i = 1, n do out[#out + 1] = {found[i], redis.call('HGETALL', P .. 'acc:' .. found[i])} end
if #found > limit then out[1] = found[limit] elseif scanned >= cap and last then out[1] = last end
return out
"""
)

# ARGV: prefix, id, now, next refresh at, minimum interval since the last claim
CLAIM_REFRESH = (
    COMMON
    + r"""
local id, now, nxt, min_interval = ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local k = P .. 'acc:' .. id
local last = redis.call('HGET', k, 'refreshed_at')
if not last then return 0 end
if now - tonumber(last) < min_interval then return 0 end
redis.call('HSET', k, 'refreshed_at', f(now))
redis.call('ZADD', P .. 'refresh', nxt, id)
return 1
"""
)

# ARGV: prefix, now, limit. Ids whose refresh is due, earliest first.
DUE = (
    COMMON
    + r"""
return redis.call('ZRANGEBYSCORE', P .. 'refresh', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
"""
)
