"""The detector's atomic store operations, each with a Lua body (Redis) and a Python twin (memory).

* ``APPEND_CAPPED``: append items to a list, keep the last ``cap``, refresh its expiry (audit trail,
  feature timeline, kept prompts).
* ``READ_LIST``: a whole list.
* ``GROUP_SYNC``: for a batch of groups, add this replica's deltas (requests, extraction-score sum,
  new members, new linked members) and return the shared totals. Members are kept in a set capped at
  ``max_members``; the account count comes from a HyperLogLog (exact set in the Python twin).
* ``LEVEL_SYNC``: write this replica's level votes, pin and allowlist changes, and return the whole
  shared state when its version moved since ``last_version`` (else just the version).
* ``ACCOUNT_SYNC``: merge this replica's per-account feature deltas into each account's shared
  features and return the merged ones (one key per account: on a cluster, one call per slot).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.plugins import MemoryLike, Script, StateStore


def slot_calls(store: StateStore, keys: Sequence[str], per_call: int) -> list[list[int]]:
    """The positions of ``keys`` in script calls of at most ``per_call``, each call's keys in one
    slot (a Redis Cluster refuses a script whose keys span slots; off a cluster every key is slot 0)."""
    by_slot: dict[int, list[int]] = {}
    for position, key in enumerate(keys):
        by_slot.setdefault(store.slot(key), []).append(position)
    return [same[i : i + per_call] for same in by_slot.values() for i in range(0, len(same), per_call)]


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_APPEND_LUA = """
for i = 3, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('LLEN', KEYS[1])
"""


def _append_local(store: MemoryLike, keys: Sequence[str], args: Sequence[Any]) -> int:
    import time

    now = time.time()
    cap, ttl_ms = int(args[0]), float(args[1])
    items = list(store.get_value(keys[0], now) or [])
    items.extend(_s(a) for a in args[2:])
    items = items[-cap:]
    store.set_value(keys[0], items, ttl_ms / 1000.0, now)
    return len(items)


APPEND_CAPPED = Script("detector_append_capped", _APPEND_LUA, _append_local)


def _read_local(store: MemoryLike, keys: Sequence[str], args: Sequence[Any]) -> list[str]:
    import time

    return list(store.get_value(keys[0], time.time()) or [])


READ_LIST = Script("detector_read_list", "return redis.call('LRANGE', KEYS[1], 0, -1)", _read_local)

_GROUP_LUA = """
local ttl = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local pos = 3
local out = {}
for g = 0, (#KEYS / 4) - 1 do
  local h, m, l, u = KEYS[g*4+1], KEYS[g*4+2], KEYS[g*4+3], KEYS[g*4+4]
  local dr, dc = ARGV[pos], ARGV[pos+1]
  local nm = tonumber(ARGV[pos+2])
  pos = pos + 3
  local size = redis.call('SCARD', m)
  for i = 1, nm do
    redis.call('PFADD', u, ARGV[pos])
    if size < cap then size = size + redis.call('SADD', m, ARGV[pos]) end
    pos = pos + 1
  end
  local nl = tonumber(ARGV[pos]); pos = pos + 1
  for i = 1, nl do redis.call('SADD', l, ARGV[pos]); pos = pos + 1 end
  local r = redis.call('HINCRBYFLOAT', h, 'r', dr)
  local c = redis.call('HINCRBYFLOAT', h, 'c', dc)
  for _, k in ipairs({h, m, l, u}) do redis.call('PEXPIRE', k, ttl) end
  out[#out+1] = r
  out[#out+1] = c
  out[#out+1] = redis.call('PFCOUNT', u)
  out[#out+1] = redis.call('SCARD', l)
end
return out
"""


def _group_local(store: MemoryLike, keys: Sequence[str], args: Sequence[Any]) -> list[Any]:
    import time

    now = time.time()
    ttl = float(args[0]) / 1000.0
    cap = int(args[1])
    pos = 2
    out: list[Any] = []
    for g in range(len(keys) // 4):
        h, m, linked_key, u = keys[g * 4 : g * 4 + 4]
        totals = dict(store.get_value(h, now) or {"r": 0.0, "c": 0.0})
        members = set(store.get_value(m, now) or ())
        linked = set(store.get_value(linked_key, now) or ())
        everyone = set(store.get_value(u, now) or ())
        d_requests, d_content, count = float(args[pos]), float(args[pos + 1]), int(args[pos + 2])
        pos += 3
        for account in args[pos : pos + count]:
            everyone.add(_s(account))
            if len(members) < cap:
                members.add(_s(account))
        pos += count
        count = int(args[pos])
        pos += 1
        linked.update(_s(a) for a in args[pos : pos + count])
        pos += count
        totals["r"] += d_requests
        totals["c"] += d_content
        for key, value in ((h, totals), (m, members), (linked_key, linked), (u, everyone)):
            store.set_value(key, value, ttl, now)
        out.extend([repr(totals["r"]), repr(totals["c"]), len(everyone), len(linked)])
    return out


GROUP_SYNC = Script("detector_group_sync", _GROUP_LUA, _group_local)

_LEVEL_LUA = """
local now = tonumber(ARGV[1])
local replica = ARGV[2]
local ttl = tonumber(ARGV[3])
local last = ARGV[4]
local pos = 5
local changed = false
local n = tonumber(ARGV[pos]); pos = pos + 1
for i = 1, n do
  local field = ARGV[pos] .. '\\t' .. replica
  if ARGV[pos+1] == 'none' then redis.call('HDEL', KEYS[1], field)
  else redis.call('HSET', KEYS[1], field, ARGV[pos+1] .. '\\t' .. tostring(now + ttl)) end
  pos = pos + 2
  changed = true
end
n = tonumber(ARGV[pos]); pos = pos + 1
for i = 1, n do
  if ARGV[pos+1] == '' then redis.call('HDEL', KEYS[2], ARGV[pos])
  else redis.call('HSET', KEYS[2], ARGV[pos], ARGV[pos+1]) end
  pos = pos + 2
  changed = true
end
n = tonumber(ARGV[pos]); pos = pos + 1
for i = 1, n do
  if ARGV[pos+1] == '+' then redis.call('SADD', KEYS[3], ARGV[pos])
  else redis.call('SREM', KEYS[3], ARGV[pos]) end
  pos = pos + 2
  changed = true
end
if changed then redis.call('INCR', KEYS[4]) end
local version = redis.call('GET', KEYS[4]) or '0'
if version == last then return {version} end
local votes = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #votes, 2 do
  local level, expires = string.match(votes[i+1], '([^\\t]+)\\t(.+)')
  if tonumber(expires) < now then redis.call('HDEL', KEYS[1], votes[i])
  else live[#live+1] = votes[i]; live[#live+1] = level end
end
return {version, live, redis.call('HGETALL', KEYS[2]), redis.call('SMEMBERS', KEYS[3])}
"""


def _level_local(store: MemoryLike, keys: Sequence[str], args: Sequence[Any]) -> list[Any]:
    import time

    wall = time.time()
    now, replica, ttl, last = float(args[0]), _s(args[1]), float(args[2]), _s(args[3])
    votes: dict[str, str] = dict(store.get_value(keys[0], wall) or {})
    pins: dict[str, str] = dict(store.get_value(keys[1], wall) or {})
    allow: set[str] = set(store.get_value(keys[2], wall) or ())
    version = int(store.get_value(keys[3], wall) or 0)
    pos = 4
    changed = False
    for _ in range(int(args[pos])):
        field = f"{_s(args[pos + 1])}\t{replica}"
        level = _s(args[pos + 2])
        if level == "none":
            votes.pop(field, None)
        else:
            votes[field] = f"{level}\t{now + ttl}"
        pos += 2
        changed = True
    pos += 1
    for _ in range(int(args[pos])):
        account, level = _s(args[pos + 1]), _s(args[pos + 2])
        if level:
            pins[account] = level
        else:
            pins.pop(account, None)
        pos += 2
        changed = True
    pos += 1
    for _ in range(int(args[pos])):
        account, op = _s(args[pos + 1]), _s(args[pos + 2])
        if op == "+":
            allow.add(account)
        else:
            allow.discard(account)
        pos += 2
        changed = True
    if changed:
        version += 1
    live: list[str] = []
    for field, value in list(votes.items()):
        level, _, expires = value.partition("\t")
        if float(expires) < now:
            del votes[field]
        else:
            live.extend([field, level])
    store.set_value(keys[0], votes, 0, wall)
    store.set_value(keys[1], pins, 0, wall)
    store.set_value(keys[2], allow, 0, wall)
    store.set_value(keys[3], version, 0, wall)
    if str(version) == last:
        return [str(version)]
    flat_pins = [x for item in pins.items() for x in item]
    return [str(version), live, flat_pins, sorted(allow)]


LEVEL_SYNC = Script("detector_level_sync", _LEVEL_LUA, _level_local)

# ACCOUNT_SYNC: merge each replica's per-account feature deltas and template uses into the account's
# shared state. Numbers travel and are stored as packed little-endian doubles (Lua's struct library):
# parsing and printing 27 numbers as text cost a script about 80 µs, unpacking them a few.
# KEYS: per account two keys with one hash tag: its features record, its template uses.
# ARGV: ttl_ms, size, rate index, the two token indices (0-based), the cap on templates kept, then
# per account two arguments:
# * one packed record of 7 + size doubles: requests added, first seen, last seen, P (product of this
#   replica's decay factors since its base), Pm (the same for the token averages), rate added, its
#   reference time (wall), the deltas D. Every average v becomes v * P + D (the token ones
#   v * Pm + D): exactly what one replica computes when the batches do not interleave, and the
#   same EWMA up to order within one round when they do. The rate (a count decaying with a 60 s
#   time constant) is summed at the later reference time.
# * the template uses added (template_share.py): 24-byte entries, the key as 8 opaque bytes (a
#   64-bit key does not survive as a Lua number), uses and extraction sum as doubles; they add to
#   the stored ones, and past the cap the weakest (lowest mean extraction, then fewest uses, then
#   key bytes) are dropped.
# The features key holds one packed record of 4 + size doubles: requests, first seen, last seen,
# the rate's reference time, the values; the templates key the merged entries. The reply is, per
# account, the two.
_ACCOUNT_LUA = """
local ttl, size = tonumber(ARGV[1]), tonumber(ARGV[2])
local ri, ta, tb = tonumber(ARGV[3]) + 1, tonumber(ARGV[4]) + 1, tonumber(ARGV[5]) + 1
local tcap = tonumber(ARGV[6])
local fin = '<' .. string.rep('d', 7 + size)
local fout = '<' .. string.rep('d', 4 + size)
local out = {}
local function entries(s, t, order)
  if not s then return end
  local pos = 1
  while pos + 23 <= #s do
    local k, u, x, nxt = struct.unpack('<c8dd', s, pos)
    local e = t[k]
    if e then e[1] = e[1] + u; e[2] = e[2] + x
    else t[k] = {u, x}; order[#order + 1] = k end
    pos = nxt
  end
end
for i = 1, #KEYS / 2 do
  local key, tkey = KEYS[2 * i - 1], KEYS[2 * i]
  local a = {struct.unpack(fin, ARGV[5 + 2 * i])}
  local cur = redis.call('GET', key)
  local n, f, l, rt = 0, a[2], a[3], a[7]
  local vals = {}
  if cur and #cur == 8 * (4 + size) then
    local c = {struct.unpack(fout, cur)}
    n, f, l, rt = c[1], c[2], c[3], c[4]
    for j = 1, size do vals[j] = c[4 + j] end
  else
    for j = 1, size do vals[j] = 0 end
  end
  local p, pm, drate, ref = a[4], a[5], a[6], a[7]
  for j = 1, size do
    if j == ri then
    elseif j == ta or j == tb then vals[j] = vals[j] * pm + a[7 + j]
    else vals[j] = vals[j] * p + a[7 + j] end
  end
  local tm = math.max(rt, ref)
  vals[ri] = vals[ri] * math.exp(-(tm - rt) / 60.0) + drate * math.exp(-(tm - ref) / 60.0)
  n = n + a[1]
  if a[2] < f then f = a[2] end
  if a[3] > l then l = a[3] end
  local record = struct.pack(fout, n, f, l, tm, unpack(vals))
  redis.call('SET', key, record, 'PX', ttl)
  out[#out + 1] = record
  local t, order = {}, {}
  entries(redis.call('GET', tkey), t, order)
  local added = ARGV[6 + 2 * i]
  entries(added, t, order)
  if #order > tcap then
    table.sort(order, function(x, y)
      local ex, ey = t[x], t[y]
      local mx, my = ex[2] / ex[1], ey[2] / ey[1]
      if mx ~= my then return mx > my end
      if ex[1] ~= ey[1] then return ex[1] > ey[1] end
      return x < y
    end)
    for j = #order, tcap + 1, -1 do order[j] = nil end
  end
  local parts = {}
  for j, k in ipairs(order) do parts[j] = struct.pack('<c8dd', k, t[k][1], t[k][2]) end
  local blob = table.concat(parts)
  if #added > 0 then redis.call('SET', tkey, blob, 'PX', ttl) end
  out[#out + 1] = blob
end
return out
"""


def _account_local(store: MemoryLike, keys: Sequence[str], args: Sequence[Any]) -> list[bytes]:
    import math
    import struct
    import time

    wall = time.time()
    ttl, size = float(args[0]) / 1000.0, int(args[1])
    ri, ta, tb, tcap = int(args[2]), int(args[3]), int(args[4]), int(args[5])
    fin, fout = f"<{7 + size}d", f"<{4 + size}d"
    entry = struct.Struct("<8sdd")
    out: list[bytes] = []
    for i in range(len(keys) // 2):
        key, tkey = keys[2 * i], keys[2 * i + 1]
        raw = _b(args[6 + 2 * i])
        a = struct.unpack(fin, raw)
        cur = store.get_value(key, wall)
        n, f, last_seen, rt = 0.0, a[1], a[2], a[6]
        if isinstance(cur, bytes) and len(cur) == 8 * (4 + size):
            c = struct.unpack(fout, cur)
            n, f, last_seen, rt = c[0], c[1], c[2], c[3]
            vals = list(c[4:])
        else:
            vals = [0.0] * size
        p, pm, drate, ref = a[3], a[4], a[5], a[6]
        for j in range(size):
            if j == ri:
                continue
            vals[j] = vals[j] * (pm if j in (ta, tb) else p) + a[7 + j]
        tm = max(rt, ref)
        vals[ri] = vals[ri] * math.exp(-(tm - rt) / 60.0) + drate * math.exp(-(tm - ref) / 60.0)
        n = n + a[0]
        f = min(f, a[1])
        last_seen = max(last_seen, a[2])
        record = struct.pack(fout, n, f, last_seen, tm, *vals)
        store.set_value(key, record, ttl, wall)
        out.append(record)
        merged: dict[bytes, list[float]] = {}
        added = _b(args[7 + 2 * i])
        for blob in (store.get_value(tkey, wall) or b"", added):
            for k, uses, extraction in entry.iter_unpack(blob[: len(blob) - len(blob) % entry.size]):
                known = merged.get(k)
                if known is None:
                    merged[k] = [uses, extraction]
                else:
                    known[0] += uses
                    known[1] += extraction
        order = list(merged)
        if len(order) > tcap:
            order.sort(key=lambda k: (-(merged[k][1] / merged[k][0]), -merged[k][0], k))
            order = order[:tcap]
        blob = b"".join(entry.pack(k, *merged[k]) for k in order)
        if added:
            store.set_value(tkey, blob, ttl, wall)
        out.append(blob)
    return out


def _b(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("latin-1")


ACCOUNT_SYNC = Script("detector_account_sync", _ACCOUNT_LUA, _account_local)
