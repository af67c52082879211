/**
 * The Lua scripts of RedisStore: every operation that reads and writes a channel is one script, so it
 * is atomic across every process sharing the store. Each script gets the channel's keys through KEYS
 * (meta, messages, subscribers, leases: see keys.ts) and reads the time from Redis' own clock, so app
 * hosts need no synchronised clocks. The shared prelude applies the buffer rules of buffer-rules.ts
 * and the idle clock of MemoryStore (`settle`), then sets the keys' own expiry so that an idle channel
 * vanishes by itself with nobody touching it.
 */
import { createHash } from 'node:crypto';

const PRELUDE = `
local C, M, S, L, F, K = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
-- maxChannels: the store's channel index (a sorted set of every channel, scored by the time its keys
-- expire) and the limit, given to every script when the store has a limit (see roomForChannel).
local I = KEYS[7]
local LIMIT = tonumber(table.remove(ARGV, 1))
-- The calling process's waiting subscribers not counted in S yet, less those S counts that no longer
-- wait (it counts in batches): what this script answers as the channel's subscribers includes it.
local UNCOUNTED = tonumber(table.remove(ARGV, 1))
-- What happened to the channel itself, in order ('c' created, 'd' removed): returned with the result.
local lifecycle = ''
local clock = redis.call('TIME')
local sec = tonumber(clock[1])
local now = sec * 1000 + math.floor(tonumber(clock[2]) / 1000)

local function meta(name)
  local v = redis.call('HGET', C, name)
  if v then return tonumber(v) end
  return nil
end

-- The newest id the channel has given: its last message's; else, for a channel made again (by a
-- subscriber, a PUT) within the last second of a removed one of its name, that one's last id, which it
-- keeps as its floor for as long as it lives (as MemoryStore does); else that of one removed this
-- second (F). Nil if none.
local function newestId()
  return redis.call('HGET', C, 'last') or redis.call('HGET', C, 'floor') or redis.call('GET', F)
end

-- A channel made again while F holds the last id of a removed one: its first message follows that id.
local function keepFloor()
  local floor = redis.call('GET', F)
  if floor then redis.call('HSET', C, 'floor', floor) end
end

local function field(entry, name)
  local f = entry[2]
  for i = 1, #f, 2 do
    if f[i] == name then return f[i + 1] end
  end
  return ''
end

-- An entry leaving the stream takes its idempotency key with it (if it was published with one).
local function forgetKey(entry)
  local key = field(entry, 'k')
  if key ~= '' and redis.call('HGET', K, key) == entry[1] then redis.call('HDEL', K, key) end
end

local function parseId(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end

local function before(a, b)
  local at, ag = parseId(a)
  local bt, bg = parseId(b)
  return at < bt or (at == bt and ag < bg)
end

-- The oldest of the newest min messages, which are served even when expired (push_min_message_buffer_length):
-- nil when none is kept that way, '-' when every stored message is.
local function keptFrom(min)
  if min <= 0 then return nil end
  local newest = redis.call('XREVRANGE', M, '+', '-', 'COUNT', min)
  if #newest < min then return '-' end
  return newest[#newest][1]
end

-- isExpired() of buffer-rules.ts, with the newest-min test done by id.
local function expired(entry, kept)
  local x = tonumber(field(entry, 'x'))
  if x == 0 or x > now then return false end
  if kept == nil then return true end
  if kept == '-' then return false end
  return before(entry[1], kept)
end

-- Counts out the subscribers of processes whose lease has passed (the process died or lost Redis).
-- Returns the latest such lease when that removed someone.
local function prune()
  local leases = redis.call('HGETALL', L)
  local latest = nil
  for i = 1, #leases, 2 do
    local deadline = tonumber(leases[i + 1])
    if deadline <= now then
      local process = leases[i]
      local gone = redis.call('ZREMRANGEBYLEX', S, '[' .. process .. '|', '(' .. process .. '}')
      redis.call('HDEL', L, process)
      if gone > 0 and (latest == nil or deadline > latest) then latest = deadline end
    end
  end
  return latest
end

-- Drops expired messages from the head of the stream; returns how many, the last one's expiry and the
-- stream's length before.
local function expire(min)
  local length = redis.call('XLEN', M)
  local dropped, lastExpiry = 0, nil
  -- The oldest alone first (usually not expired: nothing more to read), then growing batches.
  local count = 1
  while length - dropped > min do
    local batch = redis.call('XRANGE', M, '-', '+', 'COUNT', math.min(count, length - dropped - min))
    count = math.min(count * 4, 32)
    local ids = {}
    local stop = #batch == 0
    for _, entry in ipairs(batch) do
      local x = tonumber(field(entry, 'x'))
      if x == 0 or x > now then
        stop = true
        break
      end
      ids[#ids + 1] = entry[1]
      lastExpiry = x
      forgetKey(entry)
    end
    if #ids > 0 then
      redis.call('XDEL', M, unpack(ids))
      dropped = dropped + #ids
    end
    if stop then break end
  end
  return dropped, lastExpiry, length
end

-- Removes the channel. A channel created again within this second must not hand out its old ids (a
-- subscriber holding T:0 would skip a new T:0), so its last id stays in F until the second is over.
local function removeChannel()
  local last = redis.call('HGET', C, 'last') or redis.call('HGET', C, 'floor')
  redis.call('DEL', C, M, S, L, K)
  lifecycle = lifecycle .. 'd'
  if I then redis.call('ZREM', I, C) end
  if last then
    local lastTime = parseId(last)
    -- Gone from the first millisecond of the next second (Redis expires a key once its time is past).
    if lastTime >= sec then redis.call('SET', F, last, 'PXAT', (lastTime + 1) * 1000 - 1) end
  end
end

-- Whether one more channel may be created under maxChannels: channels whose keys have expired leave
-- the index first, so the count never drifts (a crashed process cannot leave one counted).
local function roomForChannel()
  if not I or LIMIT <= 0 then return true end
  redis.call('ZREMRANGEBYSCORE', I, '-inf', now)
  return redis.call('ZCARD', I) < LIMIT
end

local function markIfIdle()
  if redis.call('XLEN', M) == 0 and redis.call('ZCARD', S) == 0 and redis.call('HEXISTS', C, 'idle') == 0 then
    redis.call('HSET', C, 'idle', now)
  end
end

-- When the channel's keys expire, from its state now: the moment it would become removable if nobody
-- touched it (never while it keeps messages forever). False when it is removable now (and removed).
-- xmax: the meta hash's xmax when the caller has it at hand (nil: read it).
local function expireKeys(stored, waiting, idle, min, cto, deferred, xmax)
  local at = nil
  if idle ~= nil then
    at = idle + cto
    if at <= now then
      removeChannel()
      return false
    end
    -- deferred: the script sets the keys' expiry itself once it has changed the channel.
    if deferred then return true end
  elseif deferred then
    return true
  else
    local never = false
    if stored > 0 then
      if min > 0 then
        never = true
      else
        xmax = xmax or meta('xmax') or 0
        if xmax == 0 then never = true else at = xmax end
      end
    end
    if waiting > 0 and not never then
      -- Live subscribers keep it until their leases pass; heartbeats push that back.
      for _, v in ipairs(redis.call('HVALS', L)) do
        local deadline = tonumber(v)
        if at == nil or deadline > at then at = deadline end
      end
    end
    if never then at = nil elseif at ~= nil then at = at + cto end
  end
  if at ~= nil then
    for _, key in ipairs({C, M, S, L, K}) do redis.call('PEXPIREAT', key, at) end
  elseif redis.call('PTTL', C) ~= -1 then
    -- The keys get an expiry together, and a key made since has none: without one on C, none has one.
    for _, key in ipairs({C, M, S, L, K}) do redis.call('PERSIST', key) end
  end
  if I then redis.call('ZADD', I, at or '+inf', C) end
  return true
end

-- MemoryStore's settle(): applies the clock, removes the channel once idle for channelTimeout, and
-- sets the keys' expiry to the moment it would become removable if nobody touched it. False if gone;
-- else true, the messages stored, the subscribers waiting and the idle clock. known: the channel's
-- meta hash as the caller read it ({idle, xmax}, numbers or nil), for a channel known to exist; what
-- settle changes of it is changed there too.
local function settle(oldMin, oldCto, deferExpiry, known)
  if not known and redis.call('EXISTS', C) == 0 then return false end
  local min, cto = oldMin or meta('min') or 0, oldCto or meta('cto') or 0
  local lostSubscribersAt = prune()
  local dropped, lastExpiry, length = expire(min)
  local stored, waiting = length - dropped, redis.call('ZCARD', S)
  local idle
  if known then idle = known.idle else idle = meta('idle') end
  if stored == 0 and waiting == 0 then
    if idle == nil then
      local since = nil
      if dropped > 0 then since = math.min(now, lastExpiry) end
      if lostSubscribersAt and (since == nil or lostSubscribersAt > since) then since = math.min(now, lostSubscribersAt) end
      if since then
        idle = since
        -- pcall: under Redis OOM (HSET is refused) the channel still serves; its clock starts next time.
        redis.pcall('HSET', C, 'idle', idle)
      end
    end
  elseif idle ~= nil then
    redis.call('HDEL', C, 'idle')
    idle = nil
  end
  if stored == 0 and (not known or known.xmax) then redis.call('HDEL', C, 'xmax') end
  if known then
    known.idle = idle
    if stored == 0 then known.xmax = nil end
  end
  return expireKeys(stored, waiting, idle, min, cto, deferExpiry, known and known.xmax), stored, waiting, idle
end

local function setRules(from)
  redis.call('HSET', C, 'store', ARGV[from], 'min', ARGV[from + 1], 'max', ARGV[from + 2], 'mto', ARGV[from + 3], 'cto', ARGV[from + 4])
end

-- The waiting subscribers, as the calling process sees them (see UNCOUNTED).
local function waitingNow()
  return math.max(0, redis.call('ZCARD', S) + UNCOUNTED)
end

local function info()
  local req = meta('req')
  local requested = -1
  if req then requested = math.max(0, math.floor((now - req) / 1000)) end
  return {redis.call('XLEN', M), requested, waitingNow(), redis.call('HGET', C, 'last') or ''}
end

-- Counts a waiting subscriber in (after settle()), leaving the keys' expiry to the caller. Returns
-- 'ok', 'missing', 'conflict', 'full' or 'toomany'. rulesFrom: ARGV index of the rules (store, min,
-- max, messageTimeout, channelTimeout) for a channel this join creates.
local function countIn(events, process, subscriber, concurrency, max, create, lease, rulesFrom)
  if redis.call('EXISTS', C) == 0 then
    if create ~= '1' then return 'missing' end
    if not roomForChannel() then return 'toomany' end
    setRules(rulesFrom)
    keepFloor()
    lifecycle = lifecycle .. 'c'
  end
  local waiting = redis.call('ZCARD', S)
  if concurrency == 'first' and waiting > 0 then return 'conflict' end
  if concurrency ~= 'last' and max > 0 and waiting >= max then return 'full' end
  if concurrency == 'last' and waiting > 0 then
    -- Their processes answer them 409 on this event; count them out now so no publish counts them meanwhile.
    redis.call('DEL', S)
    redis.call('PUBLISH', events, 'C\\n' .. subscriber)
  end
  redis.call('ZADD', S, 0, process .. '|' .. subscriber)
  redis.call('HSET', L, process, now + lease)
  redis.call('HSET', C, 'req', now)
  redis.call('HDEL', C, 'idle')
  return 'ok'
end

-- settle() ran before and subscribers were counted in: only the keys' expiry changes.
local function expireAfterJoin()
  if redis.call('EXISTS', C) == 1 then
    expireKeys(redis.call('XLEN', M), redis.call('ZCARD', S), nil, meta('min') or 0, meta('cto') or 0)
  end
end

-- ARGV[o + 1...]: events channel, process, subscriber id, concurrency, max subscribers, create
-- ('1'/'0'), lease ms, rules for a channel this join creates.
local function join(o)
  local result = countIn(ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4], tonumber(ARGV[o + 5]), ARGV[o + 6], tonumber(ARGV[o + 7]), o + 8)
  if result == 'ok' then expireAfterJoin() end
  return result
end
`;

/**
 * ARGV: events channel, data, has content type ('1'/'0'), content type, has event type, event type,
 * rules (store, min, max, messageTimeout, channelTimeout), idempotency key ('' = none), distinct
 * second ('1': never share a second with the last message, see NewMessage.distinctSecond), has event
 * id ('1'/'0'), event id, minRecipients ('0' = off), message/http status and headers (JSON, '' = none).
 * Returns {id, previousId, previous stored id, messages, requested, subscribers, seq} ('' = none), or
 * for a duplicate (the key's message is still stored) {id, previousId, '', messages, requested,
 * subscribers, 1, that message's fields, last}.
 */
const PUBLISH = `
-- A retry of a publish whose message is still stored (same idempotency key): nothing is written.
local idempotencyKey = ARGV[12] or ''
if idempotencyKey ~= '' then
  local known = redis.call('HGET', K, idempotencyKey)
  if known then
    local entry = redis.call('XRANGE', M, known, known)[1]
    local x = entry and tonumber(field(entry, 'x')) or 0
    if entry and (x == 0 or x > now) then
      local i = info()
      return {known, field(entry, 'p'), '', i[1], i[2], i[3], 1, entry[2], i[4]}
    end
  end
end
-- The channel's meta hash, read once: the script keeps these up to date as it changes them.
local m = redis.call('HMGET', C, 'store', 'min', 'cto', 'last', 'n', 'xmax', 'idle', 'req', 'mr', 'floor')
local existed = m[1] ~= false
local last, n, req, mr = m[4] or m[10] or nil, tonumber(m[5]) or 0, tonumber(m[8]), m[9] ~= false
local state = {xmax = tonumber(m[6]), idle = tonumber(m[7])}
-- The script's first write must be one that Redis refuses when out of memory (507): once a script has
-- written, Redis lets its later writes through. So the new rules go in first; the channel is settled
-- with the rules it had (as MemoryStore does), then with the new ones at the end.
setRules(7)
local stored, waiting, idle = 0, 0, nil
if existed then
  local present
  present, stored, waiting, idle = settle(tonumber(m[2]) or 0, tonumber(m[3]) or 0, true, state)
  if not present then
    existed = false
    setRules(7)
    -- Removed: its last id went to F, and the rest of the meta hash with it.
    last, n, req, mr = nil, 0, nil, false
    state = {}
  end
end
if not existed then
  if not roomForChannel() then
    redis.call('DEL', C)
    return {'toomany'}
  end
  lifecycle = lifecycle .. 'c'
  stored, waiting, idle = redis.call('XLEN', M), redis.call('ZCARD', S), nil
end
local store, max, mto = ARGV[7], tonumber(ARGV[9]), tonumber(ARGV[10])
local time, tag, previousId = sec, 0, ''
-- A channel recreated within its old self's last second (F) continues after that one's last id, and
-- names it as previous: a subscriber still behind it gets the loss signal.
if not last then last = redis.call('GET', F) end
if last then
  previousId = last
  local lastTime, lastTag = parseId(last)
  -- Never back, even if Redis' clock goes back (failover to a host whose clock is behind).
  if lastTime >= sec then
    if ARGV[13] == '1' then
      time = lastTime + 1
    else
      time = lastTime
      tag = lastTag + 1
    end
  end
else
  -- The first message of the channel's history (firstId() of message-id.ts): its tag is the
  -- microsecond of its second, so that a history replacing one Redis lost (restarted empty,
  -- flushed) starts after every id the lost one gave; previousId names the instant before it.
  tag = 1 + tonumber(clock[2])
  previousId = string.format('%d-%d', sec, tag - 1)
end
local id = string.format('%d-%d', time, tag)
-- The message's sequence number in its channel (~id~ of templates), counted with the id.
local seq = n + 1
local writes = {'last', id, 'n', seq}
local previous = ''
if stored > 0 then previous = redis.call('XREVRANGE', M, '+', '-', 'COUNT', 1)[1][1] end
if store == '1' and max > 0 then
  local x = 0
  if mto > 0 then x = now + mto end
  local xmax = x
  if stored > 0 then
    local current = state.xmax or 0
    if current == 0 or x == 0 then xmax = 0 else xmax = math.max(current, x) end
  end
  local fields = {'d', ARGV[2], 'x', x, 'p', previousId, 's', seq}
  if ARGV[14] == '1' then fields[#fields + 1] = 'i'; fields[#fields + 1] = ARGV[15] end
  if (ARGV[17] or '') ~= '' then fields[#fields + 1] = 'h'; fields[#fields + 1] = ARGV[17] end
  if ARGV[3] == '1' then fields[#fields + 1] = 'c'; fields[#fields + 1] = ARGV[4] end
  if ARGV[5] == '1' then fields[#fields + 1] = 'e'; fields[#fields + 1] = ARGV[6] end
  if idempotencyKey ~= '' then fields[#fields + 1] = 'k'; fields[#fields + 1] = idempotencyKey end
  redis.call('XADD', M, id, unpack(fields))
  stored = stored + 1
  if idempotencyKey ~= '' then redis.call('HSET', K, idempotencyKey, id) end
  -- The entries about to be trimmed take their keys with them.
  local over = stored - max
  if over > 0 then
    if redis.call('EXISTS', K) == 1 then
      for _, entry in ipairs(redis.call('XRANGE', M, '-', '+', 'COUNT', over)) do forgetKey(entry) end
    end
    redis.call('XTRIM', M, 'MAXLEN', max)
    stored = max
  end
  state.xmax = xmax
  writes[#writes + 1] = 'xmax'
  writes[#writes + 1] = xmax
  -- push_min_message_recipients: count who received each message ('r:<id>' in the meta hash); the
  -- oldest goes once received often enough (at most one per publish, never below min).
  local recipients = tonumber(ARGV[16] or '0') or 0
  if recipients > 0 then
    redis.call('HSET', C, 'mr', recipients, 'r:' .. id, math.max(0, waiting + UNCOUNTED))
    local oldest = redis.call('XRANGE', M, '-', '+', 'COUNT', 1)[1]
    if over <= 0 and oldest and stored > tonumber(ARGV[8])
      and tonumber(redis.call('HGET', C, 'r:' .. oldest[1]) or '0') >= recipients then
      forgetKey(oldest)
      redis.call('XDEL', M, oldest[1])
      stored = stored - 1
      oldest = redis.call('XRANGE', M, '-', '+', 'COUNT', 1)[1]
    end
    -- Counts of messages that left the stream (trimmed, expired, dropped): bounded by what it held.
    for _, name in ipairs(redis.call('HKEYS', C)) do
      if string.sub(name, 1, 2) == 'r:' and (not oldest or before(string.sub(name, 3), oldest[1])) then redis.call('HDEL', C, name) end
    end
  elseif mr then
    redis.call('HDEL', C, 'mr')
  end
end
-- The idle clock: started when the channel is left with nothing (markIfIdle), stopped when in use
-- again (a channel idle under its old rules may be published to and keep the message).
if stored == 0 and waiting == 0 then
  if idle == nil then
    idle = now
    writes[#writes + 1] = 'idle'
    writes[#writes + 1] = now
  end
elseif idle ~= nil then
  redis.call('HDEL', C, 'idle')
  idle = nil
end
redis.call('HSET', C, unpack(writes))
if stored == 0 and state.xmax then
  redis.call('HDEL', C, 'xmax')
  state.xmax = nil
end
local requested = -1
if req then requested = math.max(0, math.floor((now - req) / 1000)) end
local subscribers = math.max(0, waiting + UNCOUNTED)
local ctLength, etLength, eiLength, hLength = -1, -1, -1, -1
local response = ARGV[17] or ''
if response ~= '' then hLength = #response end
if ARGV[3] == '1' then ctLength = #ARGV[4] end
if ARGV[5] == '1' then etLength = #ARGV[6] end
if ARGV[14] == '1' then eiLength = #ARGV[15] end
-- What was kept of the message (maxMessages, 0 when not stored; messageTimeout; minRecipients), so
-- that a process can answer from the wake-ups it received (channel-view.ts).
local kept = 0
if store == '1' and max > 0 then kept = max end
redis.call('PUBLISH', ARGV[1], 'M\\n' .. id .. '\\n' .. previous .. '\\n' .. previousId .. '\\n' .. ctLength .. '\\n' .. etLength .. '\\n'
  .. seq .. '\\n' .. eiLength .. '\\n' .. hLength .. '\\n' .. kept .. ',' .. mto .. ',' .. (tonumber(ARGV[16] or '0') or 0) .. '\\n'
  .. ARGV[4] .. ARGV[6] .. ARGV[15] .. response .. ARGV[2])
-- settle() ran at the start: what changed since is this message, the rules and the idle clock, so
-- only the keys' expiry is recomputed (and a channel left idle with channelTimeout 0 goes). The
-- rules are this publish's own (set at the start).
expireKeys(stored, waiting, idle, tonumber(ARGV[8]) or 0, tonumber(ARGV[11]) or 0, false, state.xmax)
return {id, previousId, previous, stored, requested, subscribers, seq}
`;

/** ARGV: rules (store, min, max, messageTimeout, channelTimeout). Returns info. */
const CREATE = `
settle()
if redis.call('EXISTS', C) == 0 then
  if not roomForChannel() then return {'toomany'} end
  setRules(1)
  keepFloor()
  lifecycle = lifecycle .. 'c'
  -- Created empty by PUT: its idle clock starts only if it has one (see MemoryStore.create).
  if tonumber(ARGV[5]) > 0 then redis.call('HSET', C, 'idle', now) end
  settle()
end
return info()
`;

/**
 * ARGV: cursor ('' = from the oldest). Returns {0, unix second, floor} if missing, else {1, unix
 * second, last id or floor, [id, fields]} (the message only if there is one). The floor: the last id
 * of a channel of this name removed while its ids ran ahead of the clock ('' if none).
 */
const NEXT = `
if not settle() then return {0, sec, redis.call('GET', F) or ''} end
-- pcall: reads still work when Redis is out of memory (HSET is refused then, expiry changes are not).
redis.pcall('HSET', C, 'req', now)
local last = newestId() or ''
local kept = keptFrom(meta('min') or 0)
local start = '-'
if ARGV[1] ~= '' then start = '(' .. ARGV[1] end
while true do
  local batch = redis.call('XRANGE', M, start, '+', 'COUNT', 16)
  for _, entry in ipairs(batch) do
    if not expired(entry, kept) then
      -- push_min_message_recipients counts this answer (pcall: out of memory, reads still work).
      if meta('mr') then redis.pcall('HINCRBY', C, 'r:' .. entry[1], 1) end
      return {1, sec, last, entry[1], entry[2]}
    end
  end
  if #batch < 16 then return {1, sec, last} end
  start = '(' .. batch[#batch][1]
end
`;

/** ARGV: newest. Returns {0} if missing, else {1, cursor} ('' = from the oldest). */
const START_CURSOR = `
local newest = tonumber(ARGV[1])
-- The next message of a channel removed while its ids ran ahead of the clock follows its last id (F).
if not settle() then
  if newest <= 0 then return {1, redis.call('GET', F) or ''} end
  return {0}
end
if newest <= 0 then return {1, newestId() or ''} end
local kept = keptFrom(meta('min') or 0)
local entries = redis.call('XREVRANGE', M, '+', '-', 'COUNT', newest + 1)
local seen = 0
for i, entry in ipairs(entries) do
  if expired(entry, kept) then break end
  seen = seen + 1
  if seen == newest then
    if entries[i + 1] then return {1, entries[i + 1][1]} end
    return {1, field(entry, 'p')}
  end
end
return {1, ''}
`;

/** ARGV: event id. Returns {0} if missing, else {1, id of the oldest served message with it ('' = none)}. */
const FIND_EVENT_ID = `
if not settle() then return {0} end
local kept = keptFrom(meta('min') or 0)
local start = '-'
while true do
  local batch = redis.call('XRANGE', M, start, '+', 'COUNT', 64)
  for _, entry in ipairs(batch) do
    if field(entry, 'i') == ARGV[1] and not expired(entry, kept) then return {1, entry[1]} end
  end
  if #batch < 64 then return {1, ''} end
  start = '(' .. batch[#batch][1]
end
`;

/** ARGV: message id, events channel. Returns 1 if it was dropped (and says so to the processes that watch it). */
const RECEIVED = `
if not settle() then return 0 end
local oldest = redis.call('XRANGE', M, '-', '+', 'COUNT', 1)
if not oldest[1] or oldest[1][1] ~= ARGV[1] then return 0 end
if redis.call('XLEN', M) <= (meta('min') or 0) then return 0 end
forgetKey(oldest[1])
redis.call('XDEL', M, ARGV[1])
redis.call('PUBLISH', ARGV[2], 'X\\n' .. ARGV[1])
markIfIdle()
settle()
return 1
`;

/** Returns {0} if missing, else {1, messages, requested, subscribers, last, published}. */
const INFO = `
if not settle() then return {0} end
local i = info()
return {1, i[1], i[2], i[3], i[4], meta('n') or 0}
`;

/** ARGV: events channel. Returns {0} if missing, else {1, messages, requested, subscribers, last}. */
const DELETE = `
if not settle() then return {0} end
local i = info()
removeChannel()
-- With the DELETE's notice (its request body), if it gave one, after a line break.
if (ARGV[2] or '') ~= '' then redis.call('PUBLISH', ARGV[1], 'D\\n' .. ARGV[2]) else redis.call('PUBLISH', ARGV[1], 'D') end
return {1, i[1], i[2], i[3], i[4]}
`;

/**
 * ARGV: events channel, process, subscriber id, concurrency, max subscribers, create ('1'/'0'),
 * lease ms, rules for a channel this join creates (store, min, max, messageTimeout, channelTimeout).
 * Returns {'ok', 'missing', 'conflict' or 'full', the channel's newest id when it joined ('' = none)}.
 */
const JOIN = `
settle()
local result = join(0)
return {result, newestId() or ''}
`;

/**
 * The long-polls of one channel that came in together (one event-loop turn, same join options), each
 * read and, when nothing is stored for it, joined, in order, in one step. ARGV: events channel,
 * process, concurrency, max subscribers, create ('1'/'0'), lease ms, rules for a channel a join
 * creates (store, min, max, messageTimeout, channelTimeout), then per long-poll its cursor ('' = from
 * the oldest) and subscriber id. Returns {last id ('' = none), the messages answered (each once:
 * {id, fields}...), then per long-poll the number of its message in that list (nothing joined), or
 * JOIN's answer, the unix second, the floor (as NEXT's)}.
 */
const POLL = `
local last = ''
local kept = nil
local firstAfter = {}
if settle() then
  redis.pcall('HSET', C, 'req', now)
  last = redis.call('HGET', C, 'last') or ''
  kept = keptFrom(meta('min') or 0)
else
  firstAfter = nil
end
-- The first served message after a cursor, looked up once per distinct cursor (a fan-out's re-polls share one).
local function after(cursor)
  local start = '-'
  if cursor ~= '' then start = '(' .. cursor end
  while true do
    local batch = redis.call('XRANGE', M, start, '+', 'COUNT', 16)
    for _, entry in ipairs(batch) do
      if not expired(entry, kept) then return entry end
    end
    if #batch < 16 then return false end
    start = '(' .. batch[#batch][1]
  end
end
local messages, numbers, results = {}, {}, {}
local joined = false
for i = 12, #ARGV, 2 do
  local cursor, subscriber = ARGV[i], ARGV[i + 1]
  local entry = false
  -- A channel missing at the start has no messages (a join in this loop may create it empty).
  if firstAfter then
    if firstAfter[cursor] == nil then firstAfter[cursor] = after(cursor) end
    entry = firstAfter[cursor]
  end
  if entry then
    if meta('mr') then redis.pcall('HINCRBY', C, 'r:' .. entry[1], 1) end
    local n = numbers[entry[1]]
    if not n then
      messages[#messages + 1] = entry
      n = #messages
      numbers[entry[1]] = n
    end
    results[#results + 1] = n
  else
    local result = countIn(ARGV[1], ARGV[2], subscriber, ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), 7)
    if result == 'ok' then joined = true end
    results[#results + 1] = result
  end
end
if joined then expireAfterJoin() end
return {last, messages, results, sec, last ~= '' and '' or (redis.call('HGET', C, 'floor') or redis.call('GET', F) or '')}
`;

/**
 * Waiting subscribers of one process counted out and in together (RedisStore counts a watched
 * channel's subscribers in batches, see channel-view.ts). ARGV: process, lease ms, create ('1'/'0'),
 * rules for a channel this creates (store, min, max, messageTimeout, channelTimeout), how many are
 * counted out (with a 't' after it when a subscriber asked meanwhile), those subscriber ids, then the
 * ids counted in. A channel that no longer exists (removed once idle, or deleted: those subscribers
 * are told so by its event) is made again for those counted in when they may create it, as their
 * joins would have; else nobody is counted in. Also the channel's last-requested time, unless only
 * subscribers leaving are sent. Returns 1, or 0 when the channel does not exist (then or now).
 */
const COUNT = `
-- '<n>' subscribers counted out, '<n>t' when a subscriber also asked (the last-requested time).
local touched = string.sub(ARGV[9], -1) == 't'
local out = tonumber((string.gsub(ARGV[9], 't$', '')))
local joining = #ARGV > 9 + out
if redis.call('EXISTS', C) == 0 then
  if not joining or ARGV[3] ~= '1' or not roomForChannel() then return 0 end
  setRules(4)
  keepFloor()
  lifecycle = lifecycle .. 'c'
end
local left = 0
for i = 10, 9 + out, 256 do
  local members = {}
  for j = i, math.min(i + 255, 9 + out) do members[#members + 1] = ARGV[1] .. '|' .. ARGV[j] end
  left = left + redis.call('ZREM', S, unpack(members))
end
if joining then
  for i = 10 + out, #ARGV do redis.call('ZADD', S, 0, ARGV[1] .. '|' .. ARGV[i]) end
  redis.call('HSET', L, ARGV[1], now + tonumber(ARGV[2]))
  redis.call('HDEL', C, 'idle')
elseif left > 0 and redis.call('ZLEXCOUNT', S, '[' .. ARGV[1] .. '|', '(' .. ARGV[1] .. '}') == 0 then
  redis.call('HDEL', L, ARGV[1])
end
-- Subscribers counting in, or one that asked, set the last-requested time; those leaving do not.
if touched or joining then redis.pcall('HSET', C, 'req', now) end
markIfIdle()
settle()
return 1
`;

/** ARGV: process, subscriber ids... Returns how many were counted out. */
const LEAVE = `
if redis.call('EXISTS', C) == 0 then return 0 end
local left = 0
for i = 2, #ARGV, 256 do
  local members = {}
  for j = i, math.min(i + 255, #ARGV) do members[#members + 1] = ARGV[1] .. '|' .. ARGV[j] end
  left = left + redis.call('ZREM', S, unpack(members))
end
if left == 0 then return 0 end
if redis.call('ZLEXCOUNT', S, '[' .. ARGV[1] .. '|', '(' .. ARGV[1] .. '}') == 0 then redis.call('HDEL', L, ARGV[1]) end
markIfIdle()
settle()
return left
`;

/**
 * The heartbeat of one process on one channel. ARGV: process, lease ms, mode ('0' heartbeat, '1'
 * recover, '2' recover and recreate if missing, '3' only move the last id up to the floor), rules
 * (store, min, max, messageTimeout, channelTimeout), floor id ('' = none), ms since the newest poll
 * the process answered without a script ('' = none since the last heartbeat), then the subscriber
 * ids to count in again: sent when a first call answered 1 (the lease had lapsed and its subscribers
 * were pruned, Redis lost them, or the subscriber set is gone) and after a reconnect. Recovering also recreates a channel Redis lost
 * (as its joins did, when they could) and moves its last id up to `floor`, the newest id this process
 * has seen on it, so that ids never repeat after Redis restarts empty or fails over to a lagging
 * replica (a subscriber's cursor would skip a message with a reused id).
 * Returns {-1, ''} if the channel is gone, else {1 if the lease was new or 0 if renewed, the channel's
 * last id} (the process checks that its wake-ups missed nothing).
 */
const REFRESH = `
local recover = ARGV[3] ~= '0'
if not settle() then
  if ARGV[3] ~= '2' then return {-1, ''} end
  setRules(4)
  keepFloor()
  lifecycle = lifecycle .. 'c'
end
if recover and ARGV[9] ~= '' then
  local last = redis.call('HGET', C, 'last')
  if not last or before(last, ARGV[9]) then redis.call('HSET', C, 'last', ARGV[9]) end
end
-- Mode 3: the floor alone, for a channel this process published to or read but holds nobody on.
if ARGV[3] == '3' then
  settle()
  return {0, redis.call('HGET', C, 'last') or ''}
end
local added = redis.call('HSET', L, ARGV[1], now + tonumber(ARGV[2]))
-- How long ago the newest poll came that the process answered without a script: the last-requested time.
if ARGV[10] ~= '' then
  local at = now - tonumber(ARGV[10])
  local req = meta('req')
  if not req or req < at then redis.call('HSET', C, 'req', at) end
end
-- A heartbeat finding none of this process's subscribers in the set (the set evicted under an
-- evicting maxmemory-policy, or deleted by hand) answers as for a lapsed lease: the process counts
-- its subscribers in again (a process holding none does nothing). A read of the set also marks it
-- as used, for an LRU policy.
if ARGV[3] == '0' and #ARGV == 10 and added == 0 and redis.call('ZLEXCOUNT', S, '[' .. ARGV[1] .. '|', '(' .. ARGV[1] .. '}') == 0 then added = 1 end
if #ARGV > 10 then
  for i = 11, #ARGV do redis.call('ZADD', S, 0, ARGV[1] .. '|' .. ARGV[i]) end
  redis.call('HDEL', C, 'idle')
end
settle()
return {added, redis.call('HGET', C, 'last') or ''}
`;

export interface LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

/** Every script answers {lifecycle, result}: see `lifecycle` in the prelude. */
function script(name: string, body: string): LuaScript {
  const source = `${PRELUDE}local function main()\n${body}\nend\nlocal result = main()\nreturn {lifecycle, result}\n`;
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

export const SCRIPTS = {
  publish: script('publish', PUBLISH),
  create: script('create', CREATE),
  next: script('next', NEXT),
  findEventId: script('findEventId', FIND_EVENT_ID),
  startCursor: script('startCursor', START_CURSOR),
  received: script('received', RECEIVED),
  info: script('info', INFO),
  delete: script('delete', DELETE),
  join: script('join', JOIN),
  poll: script('poll', POLL),
  count: script('count', COUNT),
  leave: script('leave', LEAVE),
  refresh: script('refresh', REFRESH),
} as const;

export type ChannelScripts = { readonly [K in keyof typeof SCRIPTS]: LuaScript };

/**
 * The same scripts waking subscribers by sharded pub/sub (SPUBLISH, Redis 7 and later), for a Redis
 * Cluster: a wake-up then goes to the channel's shard only, not to every node of the cluster. The
 * channel's pub/sub name shares its keys' hash tag, so the script may publish to it.
 */
export const SHARDED_SCRIPTS: ChannelScripts = Object.fromEntries(
  Object.entries(SCRIPTS).map(([key, { name, source }]) => [key, plainScript(name, source.replaceAll("redis.call('PUBLISH'", "redis.call('SPUBLISH'"))]),
) as unknown as ChannelScripts;

/**
 * The processes sharing the store, for the statistics summary: KEYS[1] a hash of process -> `<until
 * ms>|<JSON line>`, each valid for one lease (Redis time), renewed by the heartbeat. One key only, so
 * that it runs on a Redis Cluster too.
 */
const ANNOUNCE = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], (now + tonumber(ARGV[3])) .. '|' .. ARGV[2])
return 1
`;

/** Returns the JSON lines of the live processes; drops those whose lease passed. */
const LIST_WORKERS = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  local bar = string.find(all[i + 1], '|', 1, true)
  if bar and tonumber(string.sub(all[i + 1], 1, bar - 1)) > now then
    live[#live + 1] = string.sub(all[i + 1], bar + 1)
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return live
`;

/**
 * A page of a channel listing: KEYS are (meta, messages, subscribers) per channel. Returns per
 * channel {exists, published, stored, waiting}, read as they are (no settling).
 */
const COUNT_CHANNELS = `
local out = {}
for i = 1, #KEYS, 3 do
  local exists = redis.call('EXISTS', KEYS[i])
  out[#out + 1] = exists
  out[#out + 1] = tonumber(redis.call('HGET', KEYS[i], 'n') or 0)
  out[#out + 1] = redis.call('XLEN', KEYS[i + 1])
  out[#out + 1] = redis.call('ZCARD', KEYS[i + 2])
end
return out
`;

function plainScript(name: string, source: string): LuaScript {
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

export const WORKER_SCRIPTS = {
  announce: plainScript('announce', ANNOUNCE),
  list: plainScript('listWorkers', LIST_WORKERS),
  countChannels: plainScript('countChannels', COUNT_CHANNELS),
} as const;
