"""
The Lua scripts behind the redis engine's writes: each is one atomic round trip.

(A read is one plain HGETALL: no script.) Each touches only the keys it is given, so each
runs unchanged on Redis Cluster (``CYCLE`` names two keys and is used only where both live
on one server).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sessionplus.backends.redis.executor import ScriptCall

# HSET/HDEL take their arguments from Lua's stack, which holds about 8000 values:
# write big sessions in chunks.
_CHUNKED = """
local function chunked(command, key, items, first, last, step)
  for i = first, last, step do
    redis.call(command, key, unpack(items, i, math.min(i + step - 1, last)))
  end
end
"""


class Script:
    """A Lua script; calling it with keys and arguments gives the round trip that runs it."""

    def __init__(self, text: str) -> None:
        self.text = _CHUNKED + text
        self.sha = hashlib.sha1(self.text.encode()).hexdigest()

    def __call__(self, keys: Sequence[str | bytes], args: Sequence[Any]) -> ScriptCall:
        return ScriptCall(self.text, self.sha, keys, args)


# KEYS[1] session hash; ARGV: ttl_ms, field, value, ... Writes only if the key is new.
# Returns 1 when written, 0 when the key already exists.
CREATE = Script(
    """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
chunked('HSET', KEYS[1], ARGV, 2, #ARGV, 2000)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
)

# KEYS[1] session hash; ARGV: ttl_ms, drop_data ("1" drops every data field first),
# n_deleted, deleted field * n, field, value, ...
# Returns 0, writing nothing, when the session no longer exists (deleted meanwhile).
SAVE = Script(
    """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[2] == '1' then
  local data = {}
  for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(name, 1, 2) == 'd:' then data[#data + 1] = name end
  end
  chunked('HDEL', KEYS[1], data, 1, #data, 4000)
end
local n = tonumber(ARGV[3])
chunked('HDEL', KEYS[1], ARGV, 4, 3 + n, 4000)
chunked('HSET', KEYS[1], ARGV, 4 + n, #ARGV, 2000)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
)

# KEYS[1] session hash; ARGV[1] the field naming its user index.
# Deletes the session and returns that field's value (or false).
DELETE = Script(
    """
local index = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[1])
return index
"""
)

# KEYS[1] old session hash, KEYS[2] new one (same server only). Moves the hash with its
# TTL. Returns 1 when moved, 0 when the new key is taken, -1 when the old one is gone.
CYCLE = Script(
    """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('RENAME', KEYS[1], KEYS[2])
return 1
"""
)

# KEYS[1] a user's index set; ARGV: ttl_ms, member to add, member to remove or "".
# Keeps the set alive at least ttl_ms: never shortens what another session needs.
INDEX_ADD = Script(
    """
if ARGV[3] ~= '' then redis.call('SREM', KEYS[1], ARGV[3]) end
redis.call('SADD', KEYS[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
"""
)

# KEYS[1] a user's index set; ARGV the members to remove.
INDEX_REMOVE = Script(
    """
chunked('SREM', KEYS[1], ARGV, 1, #ARGV, 4000)
return 1
"""
)
