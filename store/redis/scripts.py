"""The Lua scripts that make each write one atomic step on Redis.

Redis runs a script to its end before anything else, as the embedded actor runs
a command: so every check a write depends on (the primary key and unique
values are free, the referenced rows exist, the rows the caller read are still
at the versions it read, the clock never runs backwards) and the write itself
happen in one step, never across round trips. Each script validates
everything first and only then writes, so a refused call leaves no trace.

The caller prepares rows in Python with the embedded table's own codecs; a
script sees a row as its key, packed value and index entries (see
:mod:`store.redis.layout`). Answers are lists: ``{0, ...}`` done, ``{1, what,
...}`` refused (the client raises the matching store error), ``{2}`` a row read
by the caller changed meanwhile (it reads again and retries). Times the store
fills in come from the caller, unless another node already wrote a later one:
then the script writes that later time into the packed rows itself (at byte
spans the caller marked) and answers it, so they never run backwards. A script
that changes or removes existing rows (or makes staged ones visible) counts the
change in ``<prefix>changed:<table>`` in the same step, so a node that caches
rows of a table knows, with one read, whether any node changed it since, and
publishes it on the channel of the same name, so a node subscribed to it hears
of the change without asking (:mod:`store.redis.changes`).
Scripts that only remove rows may run past ``maxmemory`` (``allow-oom``): they
free memory; the others are refused whole when Redis is full.
"""

from __future__ import annotations

PRELUDE = r"""
local P = ARGV[1]
local req = cjson.decode(ARGV[2])

local function row_key(table_name, pk) return P .. 'r:' .. table_name .. ':' .. pk end

-- Rows of this table changed or went: count it, and tell every node that caches them (pub/sub).
local function note_change(table_name)
  redis.call('INCR', P .. 'changed:' .. table_name)
  redis.call('PUBLISH', P .. 'changed:' .. table_name, '')
end

-- The rows the caller read must still be at the tags it read ("" = must not exist).
local function check_pre(pre)
  for _, item in ipairs(pre or {}) do
    local found = redis.call('HMGET', item[1], 's', 'v', 't')
    if item[2] == '' then
      if found[1] and not found[3] then return false end
    elseif (not found[1]) or found[3] or (found[1] .. '.' .. found[2]) ~= item[2] then
      return false
    end
  end
  return true
end

-- Auto timestamps never run backwards across every node writing to this store: the time written is
-- the caller's, or the last one written if that is later. Answers the time to write.
local function clock(now)
  if not now or now == '' then return now end
  local last = redis.call('GET', P .. 'now')
  if last and tonumber(last) > tonumber(now) then return last end
  redis.call('SET', P .. 'now', now)
  return now
end

-- The packed row with the byte spans [start, end) (0-based) of its stamped values replaced by now.
local function stamp(d, spans, now)
  local out, from = {}, 1
  for _, span in ipairs(spans) do
    table.insert(out, string.sub(d, from, span[1]))
    table.insert(out, now)
    from = span[2] + 1
  end
  table.insert(out, string.sub(d, from))
  return table.concat(out)
end

-- Rows added in default-sort order let a page be a range of insertion numbers; one out of order ends that.
-- ``last:<table>`` is the default-sort value of the newest row ('' if it cannot be compared), absent if none.
local function note_order(table_name, score)
  local last = redis.call('GET', P .. 'last:' .. table_name)
  if last and (score == '' or last == '' or tonumber(score) < tonumber(last)) then
    redis.call('SET', P .. 'disorder:' .. table_name, '1')
  end
  redis.call('SET', P .. 'last:' .. table_name, score)
end

-- Ordered indexes (built lazily, see ORDER_BUILD): per column a set ascending, one descending (negated
-- scores) and one of nulls; members are the zero-padded insertion number and the key, so equal values
-- keep insertion order in both directions.
local function ordered_keys(table_name, column)
  local base = P .. 'o:' .. table_name .. ':' .. column
  return base .. ':asc', base .. ':desc', base .. ':null', P .. 'ordered:' .. table_name .. ':' .. column
end

local function order_add(table_name, entries, seq, pk, only)
  for _, entry in ipairs(entries or {}) do
    local asc, desc, null, flag = ordered_keys(table_name, entry[1])
    if (only and entry[1] == only) or (not only and redis.call('EXISTS', flag) == 1) then
      local member = string.format('%016d', tonumber(seq)) .. ':' .. pk
      if entry[2] == '' then
        redis.call('ZADD', null, 0, member)
      else
        redis.call('ZADD', asc, entry[2], member)
        redis.call('ZADD', desc, -tonumber(entry[2]), member)
      end
    end
  end
end

local function order_remove(table_name, entries, seq, pk)
  for _, entry in ipairs(entries or {}) do
    local asc, desc, null = ordered_keys(table_name, entry[1])
    local member = string.format('%016d', tonumber(seq)) .. ':' .. pk
    redis.call('ZREM', asc, member)
    redis.call('ZREM', desc, member)
    redis.call('ZREM', null, member)
  end
end

local function forget_order_if_empty(table_name)
  if redis.call('ZCARD', P .. 'all:' .. table_name) == 0 and redis.call('SCARD', P .. 'open') == 0 then
    redis.call('DEL', P .. 'disorder:' .. table_name, P .. 'last:' .. table_name)
  end
end
"""

PUT = (
    "#!lua\n"
    + PRELUDE
    + r"""
-- req: table, mode (insert | each | stage | update), now, tx, pre,
-- rows: [{pk, d (packed), x (index entries), o (default-sort value), on (o is now), n (spans of now in d),
--         fk ([field, row key] to check), oc (the default-sort value changed),
--         p ([field, parent key text or false] per foreign key: kept as 'p:<field>' for pages that embed)}]
local T = req.table

local function keep_parents(key, parents)
  for _, parent in ipairs(parents or {}) do
    if parent[2] then
      redis.call('HSET', key, 'p:' .. parent[1], parent[2])
    else
      redis.call('HDEL', key, 'p:' .. parent[1])
    end
  end
end
local mode = req.mode
local tx = tostring(req.tx or 0)
if not check_pre(req.pre) then return {2} end
if mode == 'stage' and redis.call('SISMEMBER', P .. 'open', tx) == 0 then return {1, 'transaction'} end

local claimed = {}   -- unique hash .. NUL .. field -> pk, for rows earlier in this call
local new_pks = {}   -- row key -> true, for rows earlier in this call
local accepted = {}
local refused = {}

local function check(i, row)
  local key = row_key(T, row.pk)
  local old = nil
  if mode == 'update' then
    old = redis.call('HMGET', key, 's', 'v', 'x', 'o')
  else
    if new_pks[key] or redis.call('EXISTS', key) == 1 then return {'pk', i} end
  end
  for _, entry in ipairs(row.x.u) do
    local holder = claimed[entry[1] .. '\0' .. entry[2]] or redis.call('HGET', entry[1], entry[2])
    if holder and holder ~= row.pk then return {'unique', i, entry[1]} end
  end
  for _, ref in ipairs(row.fk) do
    if not new_pks[ref[2]] then
      local t = redis.call('HMGET', ref[2], 's', 't')
      if (not t[1]) or (t[2] and t[2] ~= tx) then return {'reference', i, ref[1]} end
    end
  end
  return nil, old
end

local olds = {}
for i, row in ipairs(req.rows) do
  local problem, old = check(i, row)
  if problem then
    if mode ~= 'each' then
      -- The embedded store numbers the rows it added before the refused one (then removes them): so do we.
      if mode == 'stage' and i > 1 then redis.call('INCRBY', P .. 'seq:' .. T, i - 1) end
      return {1, unpack(problem)}
    end
    table.insert(refused, problem)
  else
    table.insert(accepted, row)
    olds[#accepted] = old
    local key = row_key(T, row.pk)
    new_pks[key] = true
    for _, entry in ipairs(row.x.u) do claimed[entry[1] .. '\0' .. entry[2]] = row.pk end
  end
end

local now = clock(req.now)
if now ~= req.now then
  for _, row in ipairs(accepted) do
    if row.n and #row.n > 0 then row.d = stamp(row.d, row.n, now) end
    for _, entry in ipairs(row.x.z or {}) do
      if entry[3] == 1 then entry[2] = now end
    end
    if row.on then row.o = now end
  end
end

local changed = false
local staged = mode == 'stage'
local index_kind = staged and 's:' or 'i:'
local seqs = {}
for n, row in ipairs(accepted) do
  local key = row_key(T, row.pk)
  if mode == 'update' then
    local old = olds[n]
    local seq = old[1]
    local was = cjson.decode(old[3])
    local keep_u, keep_i = {}, {}
    for _, entry in ipairs(row.x.u) do keep_u[entry[1] .. '\0' .. entry[2]] = true end
    for _, suffix in ipairs(row.x.i) do keep_i[suffix] = true end
    for _, entry in ipairs(was.u) do
      if not keep_u[entry[1] .. '\0' .. entry[2]] and redis.call('HGET', entry[1], entry[2]) == row.pk then
        redis.call('HDEL', entry[1], entry[2])
      end
    end
    for _, suffix in ipairs(was.i) do
      if not keep_i[suffix] then redis.call('ZREM', P .. 'i:' .. suffix, row.pk) end
    end
    for _, entry in ipairs(row.x.u) do redis.call('HSET', entry[1], entry[2], row.pk) end
    for _, suffix in ipairs(row.x.i) do redis.call('ZADD', P .. 'i:' .. suffix, seq, row.pk) end
    order_remove(T, was.z, seq, row.pk)
    order_add(T, row.x.z, seq, row.pk)
    if row.oc then redis.call('SET', P .. 'disorder:' .. T, '1') end
    local version = redis.call('HINCRBY', key, 'v', 1)
    redis.call('HSET', key, 'd', row.d, 'x', cjson.encode(row.x), 'o', row.o)
    keep_parents(key, row.p)
    table.insert(seqs, {seq, version})
    changed = true
  else
    local seq = redis.call('INCR', P .. 'seq:' .. T) - 1
    if staged then
      redis.call('HSET', key, 's', seq, 'v', 1, 'd', row.d, 'x', cjson.encode(row.x), 'o', row.o, 't', tx)
      keep_parents(key, row.p)
      redis.call('RPUSH', P .. 'tx:' .. tx, T .. ':' .. row.pk)
    else
      redis.call('HSET', key, 's', seq, 'v', 1, 'd', row.d, 'x', cjson.encode(row.x), 'o', row.o)
      keep_parents(key, row.p)
      redis.call('ZADD', P .. 'all:' .. T, seq, row.pk)
      order_add(T, row.x.z, seq, row.pk)
    end
    for _, entry in ipairs(row.x.u) do redis.call('HSET', entry[1], entry[2], row.pk) end
    for _, suffix in ipairs(row.x.i) do redis.call('ZADD', P .. index_kind .. suffix, seq, row.pk) end
    note_order(T, row.o)
    table.insert(seqs, seq)
  end
end
if changed then note_change(T) end
return {0, cjson.encode(seqs), cjson.encode(refused), now or ''}
"""
)

REMOVE_HELPERS = r"""
-- Remove one row and every index entry it holds.
local function drop(table_name, pk)
  local key = row_key(table_name, pk)
  local found = redis.call('HMGET', key, 'x', 't', 's')
  if not found[1] then return end
  local held = cjson.decode(found[1])
  order_remove(table_name, held.z, found[3], pk)
  for _, entry in ipairs(held.u) do
    if redis.call('HGET', entry[1], entry[2]) == pk then redis.call('HDEL', entry[1], entry[2]) end
  end
  local kind = found[2] and 's:' or 'i:'
  for _, suffix in ipairs(held.i) do redis.call('ZREM', P .. kind .. suffix, pk) end
  redis.call('ZREM', P .. 'all:' .. table_name, pk)
  redis.call('DEL', key)
end
"""

REMOVE = (
    "#!lua flags=allow-oom\n"
    + PRELUDE
    + REMOVE_HELPERS
    + r"""
-- req: pre, roots: [[table, pk]], cascade, refs: {table: [[child, field, cascades]]}
if not check_pre(req.pre) then return {2} end
local doomed = {}
local order = {}
local function collect(table_name, pk)
  local id = table_name .. ':' .. pk
  if doomed[id] then return nil end
  doomed[id] = true
  table.insert(order, {table_name, pk})
  for _, ref in ipairs(req.refs[table_name] or {}) do
    local suffix = ref[1] .. ':' .. ref[2] .. ':' .. pk
    if redis.call('EXISTS', P .. 's:' .. suffix) == 1 then
      return {1, 'importing', table_name}
    end
    local children = redis.call('ZRANGE', P .. 'i:' .. suffix, 0, -1)
    if #children > 0 then
      if not req.cascade and not ref[3] then return {1, 'referenced', table_name, #children, ref[1]} end
      for _, child in ipairs(children) do
        local problem = collect(ref[1], child)
        if problem then return problem end
      end
    end
  end
  return nil
end
for _, root in ipairs(req.roots) do
  local problem = collect(root[1], root[2])
  if problem then return problem end
end
local tables = {}
for i = #order, 1, -1 do
  drop(order[i][1], order[i][2])
  tables[order[i][1]] = true
end
for name, _ in pairs(tables) do
  forget_order_if_empty(name)
  note_change(name)
end
return {0, #order}
"""
)

BEGIN = (
    "#!lua\n"
    + PRELUDE
    + r"""
local tx = redis.call('INCR', P .. 'transactions')
redis.call('SADD', P .. 'open', tx)
return {0, tx}
"""
)

COMMIT = (
    "#!lua flags=allow-oom\n"
    + PRELUDE
    + r"""
-- req: tx. Every staged row becomes visible at once.
local tx = tostring(req.tx)
if redis.call('SISMEMBER', P .. 'open', tx) == 0 then return {1, 'transaction'} end
local list = P .. 'tx:' .. tx
local members = redis.call('LRANGE', list, 0, -1)
local tables = {}
for _, member in ipairs(members) do
  local split = string.find(member, ':', 1, true)
  local table_name, pk = string.sub(member, 1, split - 1), string.sub(member, split + 1)
  local key = row_key(table_name, pk)
  tables[table_name] = true
  local found = redis.call('HMGET', key, 's', 'x')
  redis.call('HDEL', key, 't')
  redis.call('ZADD', P .. 'all:' .. table_name, found[1], pk)
  local held = cjson.decode(found[2])
  order_add(table_name, held.z, found[1], pk)
  for _, suffix in ipairs(held.i) do
    redis.call('ZREM', P .. 's:' .. suffix, pk)
    redis.call('ZADD', P .. 'i:' .. suffix, found[1], pk)
  end
end
redis.call('DEL', list)
redis.call('SREM', P .. 'open', tx)
for name, _ in pairs(tables) do note_change(name) end
return {0, #members}
"""
)

ABORT = (
    "#!lua flags=allow-oom\n"
    + PRELUDE
    + REMOVE_HELPERS
    + r"""
-- req: tx, limit, keep (the transaction stays open when emptied).
-- Remove up to limit staged rows, newest first; answer how many remain.
local tx = tostring(req.tx)
if redis.call('SISMEMBER', P .. 'open', tx) == 0 then return {1, 'transaction'} end
local list = P .. 'tx:' .. tx
for _ = 1, req.limit do
  local member = redis.call('RPOP', list)
  if not member then break end
  local split = string.find(member, ':', 1, true)
  drop(string.sub(member, 1, split - 1), string.sub(member, split + 1))
end
local left = redis.call('LLEN', list)
if left == 0 and not req.keep then redis.call('SREM', P .. 'open', tx) end
return {0, left}
"""
)

ORDER_BUILD = (
    "#!lua\n"
    + PRELUDE
    + r"""
-- req: table, column. Build the column's ordered sets from every visible row, once; writes keep them since.
local T, column = req.table, req.column
local _, _, _, flag = ordered_keys(T, column)
if redis.call('EXISTS', flag) == 1 then return {0, 0} end
local members = redis.call('ZRANGE', P .. 'all:' .. T, 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  local x = redis.call('HGET', row_key(T, members[i]), 'x')
  order_add(T, cjson.decode(x).z, members[i + 1], members[i], column)
end
redis.call('SET', flag, '1')
return {0, #members / 2}
"""
)

ORDERED_PAGE = (
    "#!lua flags=no-writes\n"
    + PRELUDE
    + r"""
-- req: table, column, descending, offset, stop (exclusive). Answers {-1} if the column has no ordered
-- sets yet, else {total, seq, version, data, ...}: the rows by that column (nulls last), in one step.
local asc, desc, null, flag = ordered_keys(req.table, req.column)
if redis.call('EXISTS', flag) == 0 then return {-1} end
local main = req.descending and desc or asc
local n, nulls = redis.call('ZCARD', main), redis.call('ZCARD', null)
local answer = {n + nulls}
local members = {}
if req.offset < n then
  for _, m in ipairs(redis.call('ZRANGE', main, req.offset, math.min(req.stop, n) - 1)) do table.insert(members, m) end
end
if req.stop > n then
  for _, m in ipairs(redis.call('ZRANGE', null, math.max(req.offset - n, 0), req.stop - n - 1)) do
    table.insert(members, m)
  end
end
for _, member in ipairs(members) do
  local found = redis.call('HMGET', row_key(req.table, string.sub(member, 18)), 's', 'v', 'd')
  table.insert(answer, found[1]); table.insert(answer, found[2]); table.insert(answer, found[3])
end
return answer
"""
)

PAGE = r"""#!lua flags=no-writes
-- ARGV: sorted set, row-key prefix, start, stop, disorder key, then triples (foreign-key field, index-suffix
-- prefix of that foreign key, the referenced table's row-key prefix) for each embedded row.
-- Answers {total, disorder flag, then per row: seq, version, data, and per embed: seq, version, data (or nils)}
-- for ranks start..stop, in one step. A row's foreign key is its 'p:<field>' (kept by every write); a row
-- without one (a null key, or written before rows kept them) is read from its index entries (``x``).
local z, rows = ARGV[1], ARGV[2]
local answer = {redis.call('ZCARD', z), redis.call('EXISTS', ARGV[5])}
local fields = {'s', 'v', 'd'}
for e = 6, #ARGV, 3 do table.insert(fields, 'p:' .. ARGV[e]) end
for _, pk in ipairs(redis.call('ZRANGE', z, ARGV[3], ARGV[4])) do
  local found = redis.call('HMGET', rows .. pk, unpack(fields))
  table.insert(answer, found[1]); table.insert(answer, found[2]); table.insert(answer, found[3])
  local held = nil
  for e = 6, #ARGV, 3 do
    local parent = found[4 + (e - 6) / 3]
    if not parent then
      held = held or cjson.decode(redis.call('HGET', rows .. pk, 'x')).i
      local prefix = ARGV[e + 1]
      for _, suffix in ipairs(held) do
        if string.sub(suffix, 1, #prefix) == prefix then parent = string.sub(suffix, #prefix + 1) end
      end
    end
    local other = {false, false, false}
    if parent then
      local got = redis.call('HMGET', ARGV[e + 2] .. parent, 's', 'v', 'd')
      if got[1] then other = got end
    end
    for i = 1, 3 do table.insert(answer, other[i]) end
  end
end
return answer
"""

FETCH = r"""#!lua flags=no-writes
-- ARGV: row keys. Answers {seq, version, data, staged-by} per key (nil fields for a missing row).
local answer = {}
for _, key in ipairs(ARGV) do
  local found = redis.call('HMGET', key, 's', 'v', 'd', 't')
  for i = 1, 4 do table.insert(answer, found[i] or false) end
end
return answer
"""

EXPORT = r"""#!lua flags=no-writes
-- ARGV: (sorted set, row-key prefix) pairs. Answers every visible row of each table, all as of one moment.
local answer = {}
for t = 1, #ARGV, 2 do
  local rows = {}
  for _, pk in ipairs(redis.call('ZRANGE', ARGV[t], 0, -1)) do
    local found = redis.call('HMGET', ARGV[t + 1] .. pk, 's', 'v', 'd')
    table.insert(rows, found[1]); table.insert(rows, found[2]); table.insert(rows, found[3])
  end
  table.insert(answer, rows)
end
return answer
"""
