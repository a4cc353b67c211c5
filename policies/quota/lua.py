"""The quota scripts' Redis bodies (Lua): one EVALSHA per decision, one per settlement.

Time comes from the Redis server (TIME), so replicas with skewed clocks agree.
Integers returned to redis-py are floored or ceiled explicitly (Redis would
truncate). The argument layout is written by ``policies.quota.limiter``; the
in-process twins in ``policies.quota.twin`` do the same arithmetic in the same
order.
"""

PRELUDE = """
local function clock()
  local override = tonumber(ARGV[1])
  if override and override > 0 then return override end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function fmt(x) return string.format('%.17g', x) end
local function drain(key, now)
  local stored = tonumber(redis.call('GET', key))
  if stored and stored > now then return stored - now end
  return 0
end
local function store_drain(key, now, d)
  if d > 0 then
    redis.call('SET', key, fmt(now + d), 'PX', math.ceil(d / 1000) + 1)
  else
    redis.call('DEL', key)
  end
end
"""

DECIDE_LUA = (
    PRELUDE
    + """
local now = clock()
local n = tonumber(ARGV[2])
local out = {1}
local writes = {}
for i = 1, n do
  local base = 2 + (i - 1) * 5
  local kind, a, b, c, e = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3], ARGV[base + 4], ARGV[base + 5]
  local key = KEYS[i]
  local ok, remaining, reset, charged, retry = 1, 0, 0, 0, 0
  if kind == 'g' then
    local window, limit, cost = tonumber(a), tonumber(b), tonumber(c)
    local interval = window / limit
    local slack = math.min(interval / 2, 1000)
    local d = drain(key, now)
    local nd = d
    if e == 'c' then
      local available = math.floor((window + slack - d) / interval)
      if available >= 1 then
        charged = math.min(cost, available)
        nd = d + charged * interval
      else
        ok = 0
        retry = math.max(1, math.ceil(d + interval - window))
      end
    else
      local wanted = d + cost * interval
      if wanted <= window + slack then
        charged = cost
        nd = wanted
      else
        ok = 0
        retry = math.max(1, math.ceil(wanted - window))
      end
    end
    remaining = math.min(limit, math.max(0, math.floor((window + slack - nd) / interval)))
    reset = math.ceil(nd)
    writes[i] = {kind, key, nd}
  elseif kind == 'c' then
    local limit, ttl = tonumber(a), tonumber(c)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now))
    local count = redis.call('ZCARD', key)
    if count < limit then
      charged = 1
      remaining = limit - count - 1
    else
      ok = 0
      retry = 1000000
    end
    writes[i] = {kind, key, b, ttl}
  else
    local limit, window = tonumber(a), tonumber(c)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now - window))
    local count = redis.call('ZCARD', key)
    if redis.call('ZSCORE', key, b) then
      remaining = math.max(0, limit - count)
    elseif count < limit then
      charged = 1
      remaining = limit - count - 1
    else
      ok = 0
      local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
      retry = math.max(1, math.ceil(tonumber(oldest[2]) + window - now))
    end
    writes[i] = {kind, key, b, window}
  end
  if ok == 0 then out[1] = 0 end
  local at = 2 + (i - 1) * 5
  out[at], out[at + 1], out[at + 2], out[at + 3], out[at + 4] = ok, remaining, reset, charged, retry
end
if out[1] == 1 then
  for i = 1, n do
    local w = writes[i]
    if w[1] == 'g' then
      store_drain(w[2], now, w[3])
    elseif w[1] == 'c' then
      redis.call('ZADD', w[2], fmt(now + w[4]), w[3])
      redis.call('PEXPIRE', w[2], math.ceil(w[4] / 1000) + 1)
    else
      redis.call('ZADD', w[2], fmt(now), w[3])
      redis.call('PEXPIRE', w[2], math.ceil(w[4] / 1000) + 1)
    end
  end
end
return out
"""
)

SETTLE_LUA = (
    PRELUDE
    + """
local now = clock()
local n = tonumber(ARGV[2])
for i = 1, n do
  local base = 2 + (i - 1) * 4
  local kind = ARGV[base + 1]
  if kind == 'g' then
    local window, limit, delta = tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])
    local interval = window / limit
    store_drain(KEYS[i], now, drain(KEYS[i], now) + delta * interval)
  else
    redis.call('ZREM', KEYS[i], ARGV[base + 2])
  end
end
return n
"""
)
