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
# field first), the value as loaded and the value after the save (or "" and ""), n_deleted,
# deleted field * n, field, value, ... Fields are named as the codec signs them: d:<key>,
# m:<name>, x:index. Stores the value after the save if the stored value is still the one
# loaded (returns 2); else applies exactly these changes to the value as stored now, so
# fields another request wrote meanwhile stay (returns 1).
# Returns 0, writing nothing, when the session no longer exists (deleted meanwhile) or its
# value is not one the engine wrote.
SAVE = Script(
    """
local stored = redis.pcall('GET', KEYS[1])
if type(stored) ~= 'string' then return 0 end
local ttl = ARGV[1]
local function store(value)
  if tonumber(ttl) > 0 then
    redis.call('SET', KEYS[1], value, 'PX', ttl)
  else
    redis.call('DEL', KEYS[1])
  end
end
if ARGV[3] ~= '' and stored == ARGV[3] then
  store(ARGV[4])
  return 2
end
local newline = string.find(stored, '\\n', 1, true)
if not newline then return 0 end
local header_text = string.sub(stored, 1, newline - 1)
local read, header = pcall(cjson.decode, header_text)
if not read or type(header) ~= 'table' then return 0 end
local data, metadata = header[1], header[2]
if type(data) ~= 'table' or type(metadata) ~= 'table' then return 0 end
local data_count, metadata_count = #data, #metadata
local count = data_count + metadata_count + (header[3] == 1 and 1 or 0)
local texts = {}
for text in string.gmatch(string.sub(stored, newline + 1), '[^ ]+') do
  texts[#texts + 1] = text
end
if #texts ~= count then return 0 end

-- Where a field's text is, or nil.
local function position(field)
  local section, name = string.sub(field, 1, 2), string.sub(field, 3)
  if section == 'd:' then
    for i = 1, data_count do if data[i] == name then return i end end
  elseif section == 'm:' then
    for i = 1, metadata_count do if metadata[i] == name then return data_count + i end end
  elseif field == 'x:index' and count > data_count + metadata_count then
    return count
  end
  return nil
end

local deleted = tonumber(ARGV[5])
local value
-- The usual save changes fields the value has and adds or deletes none: its header stays.
local same_fields = ARGV[2] ~= '1' and deleted == 0
for i = 6, #ARGV - 1, 2 do
  local at = same_fields and position(ARGV[i])
  if not at then same_fields = false break end
  texts[at] = ARGV[i + 1]
end
if same_fields then
  value = header_text .. '\\n' .. table.concat(texts, ' ')
else
  local fields, value_of = {}, {}
  local function take(prefix, names, first)
    for i, name in ipairs(names) do
      if type(name) ~= 'string' then return false end
      fields[#fields + 1] = prefix .. name
      value_of[prefix .. name] = texts[first + i]
    end
    return true
  end
  if not (take('d:', data, 0) and take('m:', metadata, data_count)) then return 0 end
  if count > data_count + metadata_count then
    fields[#fields + 1] = 'x:index'
    value_of['x:index'] = texts[count]
  end
  if ARGV[2] == '1' then
    for _, field in ipairs(fields) do
      if string.sub(field, 1, 2) == 'd:' then value_of[field] = nil end
    end
  end
  for i = 6, 5 + deleted do value_of[ARGV[i]] = nil end
  for i = 6 + deleted, #ARGV - 1, 2 do
    fields[#fields + 1] = ARGV[i]
    value_of[ARGV[i]] = ARGV[i + 1]
  end
  local names = {d = {}, m = {}}
  local values = {d = {}, m = {}, x = {}}
  local written = {}
  for _, field in ipairs(fields) do
    local text = value_of[field]
    if text and not written[field] then
      written[field] = true
      local section = string.sub(field, 1, 1)
      if section ~= 'x' then table.insert(names[section], string.sub(field, 3)) end
      table.insert(values[section], text)
    end
  end
  local function json_list(list)  -- cjson writes an empty table as {}
    if #list == 0 then return '[]' end
    return cjson.encode(list)
  end
  for _, text in ipairs(values.m) do table.insert(values.d, text) end
  for _, text in ipairs(values.x) do table.insert(values.d, text) end
  value = '[' .. json_list(names.d) .. ',' .. json_list(names.m) .. ',' .. #values.x .. ']\\n'
    .. table.concat(values.d, ' ')
end
store(value)
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
