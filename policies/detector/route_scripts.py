"""The store scripts of account ownership (routing.py), each with its in-process twin.

* ``MEMBERS``: renew (or drop) this replica's entry in the set of live replicas, forget entries older
  than the owner lifetime, return the live ones. Times are the store's clock (Redis ``TIME``), so
  replicas' clocks need not agree.
* ``INBOX_PUSH``: append forwarded observations to an owner's inbox, unless the owner is not alive
  (``-2``: it left or stopped renewing) or the inbox would pass its cap (``-1``); the sender then
  analyses them itself.
* ``INBOX_TAKE``: the owner's side: renew its *alive* mark and take up to ``count`` observations off
  its inbox; with ``count`` 0 it leaves instead: drops the mark (pushes are refused from then on)
  and takes everything left, atomically, so nothing is pushed to an owner that will not read it.

An owner's inbox and alive mark share a hash tag (one cluster slot); the member set has its own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from gateway.plugins import MemoryLike, Script

_MEMBERS_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now, ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _members_local(store: MemoryLike, keys: Sequence[str], args: Sequence[Any]) -> list[str]:
    now = time.time()
    replica, ttl = _s(args[0]), float(args[1]) / 1000.0
    members: dict[str, float] = dict(store.get_value(keys[0], now) or {})
    if _s(args[2]) == "1":
        members.pop(replica, None)
    else:
        members[replica] = now
    members = {name: seen for name, seen in members.items() if seen > now - ttl}
    store.set_value(keys[0], members, ttl, now)
    return sorted(members)


MEMBERS = Script("detector_route_members", _MEMBERS_LUA, _members_local)

_PUSH_LUA = """
if redis.call('EXISTS', KEYS[2]) == 0 then return -2 end
local n = redis.call('LLEN', KEYS[1])
local count = #ARGV - 2
if n + count > tonumber(ARGV[1]) then return -1 end
for i = 3, #ARGV, 500 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n + count
"""


def _push_local(store: MemoryLike, keys: Sequence[str], args: Sequence[Any]) -> int:
    now = time.time()
    if not store.get_value(keys[1], now):
        return -2
    items = list(store.get_value(keys[0], now) or [])
    if len(items) + len(args) - 2 > int(args[0]):
        return -1
    items.extend(a if isinstance(a, bytes) else str(a).encode() for a in args[2:])
    store.set_value(keys[0], items, float(args[1]) / 1000.0, now)
    return len(items)


INBOX_PUSH = Script("detector_route_push", _PUSH_LUA, _push_local)

_TAKE_LUA = """
local count = tonumber(ARGV[1])
if count == 0 then
  redis.call('DEL', KEYS[2])
  local items = redis.call('LRANGE', KEYS[1], 0, -1)
  redis.call('DEL', KEYS[1])
  return items
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
local items = redis.call('LRANGE', KEYS[1], 0, count - 1)
if #items > 0 then redis.call('LTRIM', KEYS[1], #items, -1) end
return items
"""


def _take_local(store: MemoryLike, keys: Sequence[str], args: Sequence[Any]) -> list[bytes]:
    now = time.time()
    count, ttl = int(args[0]), float(args[1]) / 1000.0
    items = list(store.get_value(keys[0], now) or [])
    if count == 0:
        store.set_value(keys[1], None, 0.001, now)
        store.set_value(keys[0], None, 0.001, now)
        return items
    store.set_value(keys[1], True, ttl, now)
    taken, left = items[:count], items[count:]
    if taken:
        store.set_value(keys[0], left, ttl, now)
    return taken


INBOX_TAKE = Script("detector_route_take", _TAKE_LUA, _take_local)
