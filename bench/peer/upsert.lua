-- make bench-peer: the Node.js peer's upsert, one plain script, written as
-- a Node.js developer would write it for SPEC section 4 (and 9 and 11): no
-- library in front of it, one hash as the email index, the creation order
-- in a sorted set (server.js lists with ZRANGE), the event added with its
-- count bound inline.  Not the module's storage layout: the peer serves an
-- app of its own.
--
-- KEYS[1] customer hash   KEYS[2] email index (lowercase email -> id)
-- KEYS[3] creation order (zset)  KEYS[4] sequence    KEYS[5] the feed (stream)
-- ARGV[1] now (unix s), ARGV[2] externalId, ARGV[3] If-Match ("", "*" or
-- one ETag), ARGV[4] the feed's length bound, ARGV[5..] field/value pairs
-- (validated by the server; "" clears p, a or m)
--
-- Returns {wasCreated, field, value, ...} or an error reply.

local customer, emails, order, seq, events =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, xid, if_match = ARGV[1], ARGV[2], ARGV[3]

local cur = redis.call('HMGET', customer, 's', 'v', 'e', 'n', 'p', 'a', 'm',
                       'c', 'u')
local exists = cur[1] ~= false

if if_match ~= '' and not (exists and (if_match == '*'
                           or if_match == cur[1] .. '-' .. cur[2]))
then
    return redis.error_reply('PRECONDITION_FAILED If-Match')
end

local h = {s = cur[1], v = cur[2], e = cur[3], n = cur[4], p = cur[5],
           a = cur[6], m = cur[7], c = cur[8], u = cur[9] or cur[8]}
local sent = {}
for i = 5, #ARGV, 2 do
    sent[ARGV[i]] = ARGV[i + 1]
end

if not exists and not (sent.e and sent.n) then
    return redis.error_reply('REQUIRED email name')
end

local new_email, old_email
if sent.e then
    new_email = string.lower(sent.e)
    old_email = h.e and string.lower(h.e)
    if new_email ~= old_email then
        local owner = redis.call('HGET', emails, new_email)
        if owner and owner ~= xid then
            return redis.error_reply('EMAIL_EXISTS email')
        end
    else
        new_email = nil
    end
end

local names = {e = 'email', n = 'name', p = 'phone', a = 'avatarUrl',
               m = 'metadata'}
local changed, set, clear = {}, {}, {}
for _, f in ipairs({'e', 'n', 'p', 'a', 'm'}) do
    local v = sent[f]
    if v == '' then
        if h[f] then
            changed[#changed + 1] = names[f]
            clear[#clear + 1] = f
            h[f] = nil
        end
    elseif v and v ~= h[f] then
        changed[#changed + 1] = names[f]
        set[#set + 1] = f
        set[#set + 1] = v
        h[f] = v
    end
end

local function pairs_of(t)
    local out = {}
    for _, f in ipairs({'s', 'e', 'n', 'p', 'a', 'm', 'c', 'u', 'v'}) do
        if t[f] then
            out[#out + 1] = f
            out[#out + 1] = t[f]
        end
    end
    return out
end

if exists and #changed == 0 then
    local out = pairs_of(h)
    table.insert(out, 1, 0)
    return out
end

if exists then
    h.v = tostring(tonumber(h.v) + 1)
else
    h.s = tostring(redis.call('INCR', seq))
    h.c, h.v = now, '1'
    set[#set + 1] = 's'
    set[#set + 1] = h.s
    set[#set + 1] = 'c'
    set[#set + 1] = now
    redis.call('ZADD', order, h.s, xid)
end
h.u = now
set[#set + 1] = 'u'
set[#set + 1] = now
set[#set + 1] = 'v'
set[#set + 1] = h.v

if #clear > 0 then
    redis.call('HDEL', customer, unpack(clear))
end
redis.call('HSET', customer, unpack(set))

if new_email then
    if old_email then
        redis.call('HDEL', emails, old_email)
    end
    redis.call('HSET', emails, new_email, xid)
end

local after = pairs_of(h)
local event = {'XADD', events, 'MAXLEN', '~', ARGV[4], '*',
               't', exists and 'customer.updated' or 'customer.created',
               'x', xid}
if exists then
    event[#event + 1] = 'ch'
    event[#event + 1] = table.concat(changed, ',')
end
for i = 1, #after do
    event[#event + 1] = after[i]
end
redis.call(unpack(event))

table.insert(after, 1, exists and 0 or 1)
return after
