/**
 * Lua scripts: each store operation that touches several keys runs as one script, so it is atomic for every node.
 * Messages travel as JSON strings and are never decoded here (cjson would turn an empty array into an object); the
 * conversation record, which holds no arrays, is decoded and re-encoded.
 */

/**
 * Helpers shared by the scripts (prefix `P` = KEYS[1]).
 *
 * Open conversations are indexed by last message time in one sorted set per state, `st:bot`, `st:queued` and
 * `st:active` (scored in epoch ms): together the idle index (`findIdle`), one by one the queue (`listOpen`). Each open
 * conversation is in exactly the set of its state, moved by the script that changes the state.
 */
const common = `
local P = KEYS[1]
local OPEN_STATES = { 'active', 'queued', 'bot' }
local function cq_push(channel, entryId, key, entryJson)
  local base = P .. 'cq:' .. channel
  if redis.call('HSETNX', base .. ':e', entryId, entryJson) == 0 then return 0 end
  local score = redis.call('INCR', base .. ':n')
  redis.call('HSET', base .. ':s', entryId, score)
  local klist = base .. ':k:' .. key
  redis.call('RPUSH', klist, entryId)
  if redis.call('LLEN', klist) == 1 then redis.call('ZADD', base .. ':h', score, key) end
  redis.call('SADD', P .. 'cq:channels', channel)
  return 1
end
local function cq_remove(channel, entryId, key)
  local base = P .. 'cq:' .. channel
  if redis.call('HDEL', base .. ':e', entryId) == 0 then return end
  redis.call('HDEL', base .. ':s', entryId)
  local klist = base .. ':k:' .. key
  redis.call('LREM', klist, 1, entryId)
  local head = redis.call('LINDEX', klist, 0)
  if head then
    redis.call('ZADD', base .. ':h', redis.call('HGET', base .. ':s', head), key)
  else
    redis.call('ZREM', base .. ':h', key)
  end
  if redis.call('ZCARD', base .. ':h') == 0 then redis.call('SREM', P .. 'cq:channels', channel) end
end
local function ob_push(lane, id, item)
  local key = P .. 'ob:' .. lane .. ':' .. id
  redis.call('RPUSH', key, cjson.encode(item))
  if redis.call('LLEN', key) == 1 then redis.call('ZADD', P .. 'due:' .. lane, item.notBefore, id) end
end
-- Empties a lane but for the item 'except' (the one its worker may be delivering), keeping the due index right.
local function ob_keep_only(lane, id, except)
  local key = P .. 'ob:' .. lane .. ':' .. id
  local kept = {}
  for _, raw in ipairs(redis.call('LRANGE', key, 0, -1)) do
    if except and cjson.decode(raw).id == except then kept[#kept + 1] = raw end
  end
  redis.call('DEL', key)
  for _, raw in ipairs(kept) do redis.call('RPUSH', key, raw) end
  if #kept > 0 then
    redis.call('ZADD', P .. 'due:' .. lane, cjson.decode(kept[1]).notBefore, id)
  else
    redis.call('ZREM', P .. 'due:' .. lane, id)
  end
end
-- One outbox request of an append (see OutboxRequest in core/store.ts); 'conv' is the record when it was decoded.
local function queue_work(id, r, seq, conv)
  local key = P .. 'ob:' .. r.lane .. ':' .. id
  if r.kind == 'message' then
    if r.states then
      local listed = false
      for _, s in ipairs(r.states) do if conv and s == conv.state then listed = true end end
      if not listed then return end
    end
    ob_push(r.lane, id, { id = 'm:' .. seq, kind = 'message', seq = seq, attempts = 0, notBefore = 0 })
  elseif r.kind == 'note' then
    ob_push(r.lane, id, { id = 'n:' .. seq, kind = 'note', seq = seq, text = r.text, attempts = 0, notBefore = 0 })
  elseif r.kind == 'close' then
    for _, item in ipairs(redis.call('LRANGE', key, 0, -1)) do
      if cjson.decode(item).kind == 'close' then return end
    end
    ob_push(r.lane, id, { id = 'close', kind = 'close', reason = r.reason, attempts = 0, notBefore = 0 })
  elseif r.kind == 'open' then
    ob_push(r.lane, id, { id = 'o:' .. seq, kind = 'open', attempts = 0, notBefore = 0 })
  elseif r.kind == 'event' then
    ob_push(r.lane, id, { id = 'e:' .. seq, kind = 'event', seq = seq, name = r.name, attempts = 0, notBefore = 0 })
  elseif r.kind == 'digest' then
    local upTo = seq
    for _, raw in ipairs(redis.call('LRANGE', P .. 'ob:' .. r.from .. ':' .. id, 0, -1)) do
      local item = cjson.decode(raw)
      if item.kind == 'message' and item.id ~= r.except then
        upTo = item.seq
        break
      end
    end
    ob_push(r.lane, id, { id = 'd:' .. seq, kind = 'digest', seq = seq, upTo = upTo, attempts = 0, notBefore = 0 })
  elseif r.kind == 'move' then
    if r.from == r.lane then return end
    for _, raw in ipairs(redis.call('LRANGE', P .. 'ob:' .. r.from .. ':' .. id, 0, -1)) do
      local item = cjson.decode(raw)
      if item.kind == 'message' and item.id ~= r.except then
        ob_push(r.lane, id, { id = item.id, kind = 'message', seq = item.seq, attempts = 0, notBefore = 0 })
      end
    end
    ob_keep_only(r.from, id, r.except)
  elseif r.kind == 'clear' then
    ob_keep_only(r.lane, id, r.except)
  end
end
local function push_message(id, draft, messageId, timestamp, connectorChannel)
  local logkey = P .. 'log:' .. id
  local seq = redis.call('LLEN', logkey) + 1
  local msg = string.sub(draft, 1, -2) .. ',"seq":' .. seq .. '}'
  redis.call('RPUSH', logkey, msg)
  redis.call('HSET', P .. 'ids:' .. id, messageId, seq)
  if connectorChannel then
    local entryId = id .. ':' .. seq
    cq_push(connectorChannel, entryId, id,
      '{"id":' .. cjson.encode(entryId) .. ',"message":' .. msg .. ',"enqueuedAt":' .. cjson.encode(timestamp) .. '}')
  end
  return seq, msg
end
`;

/** ARGV: conversation JSON, options JSON, first messages as alternating draft JSON / meta JSON. */
export const INIT = `${common}
local conv = cjson.decode(ARGV[1])
local o = cjson.decode(ARGV[2])
local existing = redis.call('GET', P .. 'req:' .. o.requestId)
if existing and redis.call('EXISTS', P .. 'c:' .. existing) == 1 then
  return '{"created":false,"matchedBy":"requestId","conversation":' .. redis.call('GET', P .. 'c:' .. existing) .. '}'
end
if o.channelRef then
  local open = redis.call('GET', P .. 'open:' .. o.channelRef)
  if open and redis.call('EXISTS', P .. 'c:' .. open) == 1 then
    return '{"created":false,"matchedBy":"channelRef","conversation":' .. redis.call('GET', P .. 'c:' .. open) .. '}'
  end
end
local id = conv.id
redis.call('SET', P .. 'c:' .. id, ARGV[1])
redis.call('SET', P .. 'req:' .. o.requestId, id)
redis.call('SADD', P .. 'idx:' .. id, P .. 'req:' .. o.requestId)
if o.channelRef then
  redis.call('SET', P .. 'open:' .. o.channelRef, id)
  redis.call('SET', P .. 'latest:' .. o.channelRef, id)
  redis.call('SADD', P .. 'idx:' .. id, P .. 'open:' .. o.channelRef, P .. 'latest:' .. o.channelRef)
end
redis.call('HINCRBY', P .. 'states', conv.state, 1)
if conv.state ~= 'ended' then redis.call('ZADD', P .. 'st:' .. conv.state, o.activityMs, id) end
local i = 3
while ARGV[i] do
  local meta = cjson.decode(ARGV[i + 1])
  push_message(id, ARGV[i], meta.id, meta.timestamp, o.connectorChannel)
  i = i + 2
end
if o.openDesk then ob_push('desk', id, { id = 'open', kind = 'open', attempts = 0, notBefore = 0 }) end
if o.deskNote then ob_push('desk', id, { id = 'note', kind = 'note', text = o.deskNote, attempts = 0, notBefore = 0 }) end
return '{"created":true,"conversation":' .. ARGV[1] .. '}'
`;

/**
 * A batch of appends, run one after the other (ARGV: conversation id, draft JSON (no seq), options JSON, repeated).
 * A node sends the appends its sockets asked for in one event-loop turn as one call: Redis runs one script instead
 * of one per message. Each item answers on its own (an error in one, caught by pcall, fails that item only).
 */
export const APPEND = `${common}
local function append_one(id, draft, optionsJson)
  local o = cjson.decode(optionsJson)
  local ckey = P .. 'c:' .. id
  local raw = redis.call('GET', ckey)
  if not raw then return '{"status":"not_found"}' end
  local logkey = P .. 'log:' .. id
  if o.dedupe then
    local seen = redis.call('HGET', P .. 'ids:' .. id, o.dedupe.id)
    if seen then
      local msg = redis.call('LINDEX', logkey, tonumber(string.match(seen, '^%d+')) - 1)
      return '{"status":"duplicate","message":' .. msg .. '}'
    end
  end
  local t = o.transition
  -- A plain append needs the record's state only, to refuse one to an ended conversation: the record is decoded
  -- when it may say ended (its JSON holds the string "ended" somewhere, whatever the spacing: a plain search, cheaper
  -- than a pattern; another field worth exactly "ended" only costs a decode), or when a flag, a transition or an
  -- outbox request that depends on the state (readsState) reads it.
  local conv
  if t or o.flag or o.idleBeforeMs or o.readsState or string.find(raw, '"ended"', 1, true) then conv = cjson.decode(raw) end
  if o.requireOpen and conv and conv.state == 'ended' then return '{"status":"ended","conversation":' .. raw .. '}' end
  local flagskey = P .. 'flags:' .. id
  if o.flag then
    local has = redis.call('SISMEMBER', flagskey, o.flag.key) == 1
    if has == o.flag.value then return '{"status":"skipped","conversation":' .. raw .. '}' end
  end
  local applies = false
  if t then for _, s in ipairs(t.from) do if s == conv.state then applies = true end end end
  if t and t.required and not applies then
    if conv.state == 'ended' then return '{"status":"ended","conversation":' .. raw .. '}' end
    return '{"status":"skipped","conversation":' .. raw .. '}'
  end
  if o.idleBeforeMs then
    local at = conv.state ~= 'ended' and redis.call('ZSCORE', P .. 'st:' .. conv.state, id)
    if not at or tonumber(at) >= o.idleBeforeMs then return '{"status":"skipped","conversation":' .. raw .. '}' end
  end
  if o.flag then
    if o.flag.value then redis.call('SADD', flagskey, o.flag.key) else redis.call('SREM', flagskey, o.flag.key) end
  end
  local blocked = false
  if t and t.unlessFlagPrefix then
    for _, f in ipairs(redis.call('SMEMBERS', flagskey)) do
      if string.sub(f, 1, #t.unlessFlagPrefix) == t.unlessFlagPrefix then blocked = true end
    end
  end
  local out = raw
  local from
  if t and applies and not blocked then
    from = conv.state
    for k, v in pairs(t.set or {}) do conv[k] = v end
    for _, k in ipairs(t.unset or {}) do conv[k] = nil end
    conv.state = t.to
    redis.call('HINCRBY', P .. 'states', from, -1)
    redis.call('HINCRBY', P .. 'states', t.to, 1)
    if from ~= t.to and from ~= 'ended' then redis.call('ZREM', P .. 'st:' .. from, id) end
    if t.to == 'ended' then
      if conv.refId then
        local okey = P .. 'open:' .. conv.channel .. '\\0' .. conv.refId
        if redis.call('GET', okey) == id then redis.call('DEL', okey) end
      end
      redis.call('ZADD', P .. 'ended', o.endedAtMs or 0, id)
    end
    out = cjson.encode(conv)
    redis.call('SET', ckey, out)
  end
  local seq, msg = push_message(id, draft, o.messageId, o.timestamp, o.connectorChannel)
  -- The state sets hold open conversations only: 'conv' is decoded whenever the record may say ended, so an
  -- undecoded record is open, and in the set of its state (which one, the record would have to be decoded to say:
  -- XX updates only the set that holds it, most likely 'active', and CH says whether it did). GT: a message stamped
  -- before the last one (a concurrent send) never moves a conversation back.
  if conv then
    if conv.state ~= 'ended' then redis.call('ZADD', P .. 'st:' .. conv.state, 'GT', o.activityMs, id) end
  else
    for _, s in ipairs(OPEN_STATES) do
      if redis.call('ZADD', P .. 'st:' .. s, 'XX', 'GT', 'CH', o.activityMs, id) == 1 then break end
    end
  end
  for _, r in ipairs(o.outbox or {}) do queue_work(id, r, seq, conv) end
  -- A plain append answers with its seq alone: the caller holds the draft (the stored message is the draft and its
  -- seq) and has no use for the record, and parsing both back cost each node a JSON parse of ~1 KB per message.
  if not t then return '{"status":"appended","seq":' .. seq .. '}' end
  -- A bot's reply is recorded under a 'bot' to 'bot' "transition" that only checks the state: no change to report.
  local changed = from and not (from == 'bot' and t.to == 'bot')
  local previous = changed and (',"previousState":' .. cjson.encode(from)) or ''
  return '{"status":"appended","message":' .. msg .. ',"conversation":' .. out .. previous .. '}'
end
local out = {}
local i = 1
while ARGV[i] do
  local ok, result = pcall(append_one, ARGV[i], ARGV[i + 1], ARGV[i + 2])
  if ok then
    out[#out + 1] = result
  else
    local reason = type(result) == 'table' and result.err or tostring(result)
    out[#out + 1] = cjson.encode({ status = 'error', message = reason })
  end
  i = i + 3
end
return out
`;

/** ARGV: conversation id, ids JSON, openedAt ('' for none). */
export const BIND_DESK = `
local P = KEYS[1]
local id = ARGV[1]
local ckey = P .. 'c:' .. id
local raw = redis.call('GET', ckey)
if not raw then return nil end
local conv = cjson.decode(raw)
local ids = cjson.decode(ARGV[2])
for k, v in pairs(ids) do
  conv.desk.ids[k] = v
  local ref = P .. 'dref:' .. conv.desk.desk .. '\\0' .. k .. '\\0' .. v
  redis.call('SET', ref, id)
  redis.call('SADD', P .. 'idx:' .. id, ref)
end
if ARGV[3] ~= '' then conv.desk.openedAt = ARGV[3] end
local out = cjson.encode(conv)
redis.call('SET', ckey, out)
return out
`;

/** ARGV: conversation id, key, value. Claims the bot's id for the conversation (see ConversationStore.bindBot). */
export const BIND_BOT = `
local P = KEYS[1]
local id = ARGV[1]
local ckey = P .. 'c:' .. id
local raw = redis.call('GET', ckey)
if not raw then return '{"status":"not_found"}' end
local conv = cjson.decode(raw)
if type(conv.bot) ~= 'table' then return '{"status":"not_found"}' end
local ref = P .. 'bref:' .. conv.bot.bot .. '\\0' .. ARGV[2] .. '\\0' .. ARGV[3]
local holder = redis.call('GET', ref)
if holder and holder ~= id then return '{"status":"taken"}' end
redis.call('SET', ref, id)
redis.call('SADD', P .. 'idx:' .. id, ref)
conv.bot.ids[ARGV[2]] = ARGV[3]
local out = cjson.encode(conv)
redis.call('SET', ckey, out)
return '{"status":"bound","conversation":' .. out .. '}'
`;

/** ARGV: lane, conversation id, item id, update JSON ('' to complete). */
export const OUTBOX_UPDATE = `
local P = KEYS[1]
local key = P .. 'ob:' .. ARGV[1] .. ':' .. ARGV[2]
local due = P .. 'due:' .. ARGV[1]
local raw = redis.call('LINDEX', key, 0)
if not raw then return 0 end
local head = cjson.decode(raw)
if head.id ~= ARGV[3] then return 0 end
if ARGV[4] == '' then
  redis.call('LPOP', key)
  local nextRaw = redis.call('LINDEX', key, 0)
  if nextRaw then redis.call('ZADD', due, cjson.decode(nextRaw).notBefore, ARGV[2]) else redis.call('ZREM', due, ARGV[2]) end
else
  for k, v in pairs(cjson.decode(ARGV[4])) do head[k] = v end
  redis.call('LSET', key, 0, cjson.encode(head))
  redis.call('ZADD', due, head.notBefore, ARGV[2])
end
return 1
`;

/**
 * ARGV: conversation id, typing item JSON. Queues the customer's typing on the desk lane (see
 * ConversationStore.queueTyping): 0 when the conversation is unknown or has ended.
 */
export const QUEUE_TYPING = `${common}
local id = ARGV[1]
local raw = redis.call('GET', P .. 'c:' .. id)
if not raw or cjson.decode(raw).state == 'ended' then return 0 end
local item = cjson.decode(ARGV[2])
local key = P .. 'ob:desk:' .. id
if redis.call('LLEN', key) > 1 then
  local tail = cjson.decode(redis.call('LINDEX', key, -1))
  if tail.kind == 'typing' then
    -- Not the head: no attempt of it has started, so it may still change.
    tail.state = item.state
    tail.queuedAt = item.queuedAt
    redis.call('LSET', key, -1, cjson.encode(tail))
    return 1
  end
end
ob_push('desk', id, item)
return 1
`;

/** ARGV: channel, limit. Returns the head entry of each ordering key, oldest first. */
export const CONNECTOR_HEADS = `
local P = KEYS[1]
local base = P .. 'cq:' .. ARGV[1]
local out = {}
for _, key in ipairs(redis.call('ZRANGE', base .. ':h', 0, tonumber(ARGV[2]) - 1)) do
  local head = redis.call('LINDEX', base .. ':k:' .. key, 0)
  if head then
    local entry = redis.call('HGET', base .. ':e', head)
    if entry then table.insert(out, entry) end
  end
end
return out
`;

/** ARGV: channel, entry id, ordering key. */
export const CONNECTOR_ACK = `${common}
cq_remove(ARGV[1], ARGV[2], ARGV[3])
return 1
`;

/** ARGV: channel, entry id, ordering key, entry JSON, retention ms. Returns the entry and whether it was created. */
export const CONNECTOR_ENQUEUE = `${common}
local base = P .. 'cq:' .. ARGV[1]
local existing = redis.call('HGET', base .. ':e', ARGV[2])
if existing then return { existing, 0 } end
if redis.call('SET', P .. 'camp:' .. ARGV[1] .. ':' .. ARGV[2], '1', 'NX', 'PX', ARGV[5]) == false then return { ARGV[4], 0 } end
cq_push(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return { ARGV[4], 1 }
`;

/** ARGV: cutoff ms, max. Deletes ended conversations and everything keyed by them. */
export const SWEEP = `${common}
local removed = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'ended', '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))) do
  local raw = redis.call('GET', P .. 'c:' .. id)
  if raw then
    local conv = cjson.decode(raw)
    local base = P .. 'cq:' .. conv.channel
    for _, entryId in ipairs(redis.call('LRANGE', base .. ':k:' .. id, 0, -1)) do cq_remove(conv.channel, entryId, id) end
    redis.call('HINCRBY', P .. 'states', conv.state, -1)
  end
  for _, key in ipairs(redis.call('SMEMBERS', P .. 'idx:' .. id)) do
    if redis.call('GET', key) == id then redis.call('DEL', key) end
  end
  redis.call('DEL', P .. 'c:' .. id, P .. 'log:' .. id, P .. 'ids:' .. id, P .. 'flags:' .. id, P .. 'idx:' .. id,
    P .. 'ob:desk:' .. id, P .. 'ob:channel:' .. id, P .. 'ob:bot:' .. id, P .. 'dcur:' .. id)
  redis.call('ZREM', P .. 'due:desk', id)
  redis.call('ZREM', P .. 'due:channel', id)
  redis.call('ZREM', P .. 'due:bot', id)
  redis.call('ZREM', P .. 'ended', id)
  for _, s in ipairs(OPEN_STATES) do redis.call('ZREM', P .. 'st:' .. s, id) end
  removed = removed + 1
end
return removed
`;

/** ARGV: owner, ttl ms, lease name. Takes the lease when free or already ours (renewing it). */
export const LEASE_ACQUIRE = `
local key = KEYS[1] .. 'lease:' .. ARGV[3]
local holder = redis.call('GET', key)
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
return 1
`;

/** ARGV: owner, lease name. */
export const LEASE_RELEASE = `
local key = KEYS[1] .. 'lease:' .. ARGV[2]
if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
return 1
`;

/**
 * ARGV: options JSON { states, channel?, subject?, limit, scan, afterMs?, afterId? } (times as strings). One page of
 * open conversations, newest first by (last message time, id), merged from the state sets. Returns the next page's
 * start (ms and id, '' when nothing follows), then for each conversation its record, time and last seq.
 */
export const LIST_OPEN = `${common}
local o = cjson.decode(ARGV[1])
local CHUNK = 64
-- Byte order, as Redis orders the members of equal score (Lua's own comparison follows the locale).
local function less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local function newer(a, b)
  local x, y = tonumber(a[2]), tonumber(b[2])
  if x ~= y then return x > y end
  return less(b[1], a[1])
end
-- Each set is read in chunks from just before its position (the last entry read): first the rest of the members
-- with the position's score (they sort by member), then lower scores.
local sets = {}
for i, s in ipairs(o.states) do
  sets[i] = { key = P .. 'st:' .. s, ms = o.afterMs, id = o.afterId, buf = {}, at = 1, done = false }
end
local function head(set)
  if set.at <= #set.buf then return set.buf[set.at] end
  if set.done then return nil end
  local last = set.buf[#set.buf]
  if last then set.id, set.ms = last[1], last[2] end
  local buf = {}
  if set.ms then
    local ties = redis.call('ZRANGEBYSCORE', set.key, set.ms, set.ms)
    for i = #ties, 1, -1 do
      if less(ties[i], set.id) then buf[#buf + 1] = { ties[i], set.ms } end
    end
  end
  local rest = redis.call('ZREVRANGEBYSCORE', set.key, set.ms and ('(' .. set.ms) or '+inf', '-inf',
    'WITHSCORES', 'LIMIT', 0, CHUNK)
  for i = 1, #rest, 2 do buf[#buf + 1] = { rest[i], rest[i + 1] } end
  set.buf, set.at = buf, 1
  if #buf == 0 then set.done = true end
  return buf[1]
end
local out = { '', '' }
local taken, examined = 0, 0
local lastMs, lastId
while true do
  local best, from
  for _, set in ipairs(sets) do
    local h = head(set)
    if h and (not best or newer(h, best)) then best, from = h, set end
  end
  if not best then break end
  if taken >= o.limit or examined >= o.scan then
    out[1], out[2] = lastMs, lastId
    break
  end
  from.at = from.at + 1
  examined = examined + 1
  lastId, lastMs = best[1], best[2]
  local raw = redis.call('GET', P .. 'c:' .. lastId)
  local keep = raw ~= false
  if keep and (o.channel or o.subject) then
    local conv = cjson.decode(raw)
    keep = (not o.channel or conv.channel == o.channel) and (not o.subject or conv.subject == o.subject)
  end
  if keep then
    taken = taken + 1
    out[#out + 1] = raw
    out[#out + 1] = lastMs
    out[#out + 1] = redis.call('LLEN', P .. 'log:' .. lastId)
  end
end
return out
`;

/**
 * ARGV: batch size. Moves a batch of the index kept before the state sets (one set, 'active', of every open
 * conversation) into the set of each conversation's state; returns how many remain.
 */
export const MIGRATE_OPEN_INDEX = `
local P = KEYS[1]
local legacy = P .. 'active'
local batch = redis.call('ZRANGE', legacy, 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
for i = 1, #batch, 2 do
  local id, score = batch[i], batch[i + 1]
  local raw = redis.call('GET', P .. 'c:' .. id)
  if raw then
    local state = cjson.decode(raw).state
    if state ~= 'ended' then redis.call('ZADD', P .. 'st:' .. state, 'GT', score, id) end
  end
  redis.call('ZREM', legacy, id)
end
return redis.call('ZCARD', legacy)
`;
