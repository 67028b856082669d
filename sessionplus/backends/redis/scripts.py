"""
The Lua scripts behind the redis engine's writes: each is one atomic round trip.

(A read is one plain GET, a create one SET NX: no script.) Each touches only the keys it
is given, so each runs unchanged on Redis Cluster (``CYCLE`` names two keys and is used
only where both live on one server).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sessionplus.backends.redis.executor import ScriptCall

# SREM takes its arguments from Lua's stack, which holds about 8000 values: remove many
# members in chunks.
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


# KEYS[1] a session's value (``layout``); ARGV: ttl_ms, drop_data ("1" drops every data
# field first), n_deleted, deleted field * n, field, value, ... Fields are named as the
# codec signs them: d:<key>, m:<name>, x:index. Applies exactly these changes to the value
# as stored now, so fields another request wrote meanwhile stay.
# Returns 0, writing nothing, when the session no longer exists (deleted meanwhile) or its
# value is not one the engine wrote.
SAVE = Script(
    """
local stored = redis.pcall('GET', KEYS[1])
if type(stored) ~= 'string' then return 0 end
local newline = string.find(stored, '\\n', 1, true)
if not newline then return 0 end
local read, header = pcall(cjson.decode, string.sub(stored, 1, newline - 1))
if not read or type(header) ~= 'table' then return 0 end
-- The texts, split on each single space as the engine's Python splits them.
local texts, at = {}, newline + 1
while at <= #stored do
  local space = string.find(stored, ' ', at, true) or #stored + 1
  texts[#texts + 1] = string.sub(stored, at, space - 1)
  at = space + 1
end
local fields, value_of, count = {}, {}, 0
local function take(prefix, names)
  if type(names) ~= 'table' then return false end
  for _, name in ipairs(names) do
    if type(name) ~= 'string' then return false end
    count = count + 1
    fields[#fields + 1] = prefix .. name
    value_of[prefix .. name] = texts[count]
  end
  return true
end
if not (take('d:', header[1]) and take('m:', header[2])) then return 0 end
if header[3] == 1 then
  count = count + 1
  fields[#fields + 1] = 'x:index'
  value_of['x:index'] = texts[count]
end
if count ~= #texts then return 0 end

if ARGV[2] == '1' then
  for _, field in ipairs(fields) do
    if string.sub(field, 1, 2) == 'd:' then value_of[field] = nil end
  end
end
local n = tonumber(ARGV[3])
for i = 4, 3 + n do value_of[ARGV[i]] = nil end
for i = 4 + n, #ARGV - 1, 2 do
  fields[#fields + 1] = ARGV[i]
  value_of[ARGV[i]] = ARGV[i + 1]
end

local names = {d = {}, m = {}}
local values = {d = {}, m = {}, x = {}}
local written = {}
for _, field in ipairs(fields) do
  local value = value_of[field]
  if value and not written[field] then
    written[field] = true
    local section = string.sub(field, 1, 1)
    if section ~= 'x' then
      table.insert(names[section], cjson.encode(string.sub(field, 3)))
    end
    table.insert(values[section], value)
  end
end
local texts_out = values.d
for _, value in ipairs(values.m) do texts_out[#texts_out + 1] = value end
for _, value in ipairs(values.x) do texts_out[#texts_out + 1] = value end
local value = '[[' .. table.concat(names.d, ',') .. '],[' .. table.concat(names.m, ',')
  .. '],' .. #values.x .. ']\\n' .. table.concat(texts_out, ' ')
if tonumber(ARGV[1]) > 0 then
  redis.call('SET', KEYS[1], value, 'PX', ARGV[1])
else
  redis.call('DEL', KEYS[1])
end
return 1
"""
)

# KEYS[1] a session's value. Deletes it and returns what it held (or false), for the
# user index it names.
DELETE = Script(
    """
local stored = redis.pcall('GET', KEYS[1])
redis.call('DEL', KEYS[1])
if type(stored) ~= 'string' then return false end
return stored
"""
)

# KEYS[1] old session's value, KEYS[2] new one (same server only). Moves the value with its
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
