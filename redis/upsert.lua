-- Upsert one customer, atomically with its email index, its creation
-- order, its change event and its idempotency record.
--
-- KEYS[1..3], ARGV[1..5]: the change feed and idempotency (lib.lua)
-- KEYS[4] sd:{app}:c:<externalId>  customer hash
-- KEYS[5] sd:{app}:emails          the email index: the prefix of its
--                                  buckets (lib_customer.lua)
-- KEYS[6] sd:{app}:order           creation order: the prefix of its buckets
--                                  sd:{app}:order:<s div 128> (s -> externalId)
--                                  and of the customer count sd:{app}:order:n
-- KEYS[7] sd:{app}:seq             creation sequence counter
-- KEYS[8] a batch's idempotency record, when ARGV[9] is not ""
-- ARGV[6] externalId, ARGV[7] If-Match ("", "*" or ETags), ARGV[8]
-- If-None-Match ("" or "*"), ARGV[9] the batch's token ("": not a batch
-- item), ARGV[10..] field/value pairs, already validated by the gateway:
--   e email, n name, p phone, a avatarUrl, m metadata (compact JSON);
--   an empty value clears the field (only p, a and m can be empty).
--
-- Returns cmsgpack.pack() of {wasCreated (0|1), the customer hash as
-- field/value pairs} (one string: sd.record) or one of the errors
-- SD_REQUIRED <field>... (create without email/name), SD_EMAIL_EXISTS,
-- SD_PRECONDITION_FAILED, SD_BATCH_GONE: each starts with its code, as
-- Redis expects.  Nothing is written before every check has passed; an
-- update that changes nothing writes nothing and emits no event.

local w = sd.writer()
local customer, emails, order, seq = KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local xid, if_match, if_none, token = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local now = w.now

-- a batch item runs only while its batch holds its idempotency record
if token ~= '' and redis.call('HGET', KEYS[8], 'busy') ~= token then
    return redis.error_reply('SD_BATCH_GONE Idempotency-Key')
end

local replay = sd.replay(w)
if replay then
    return replay
end

local cur = redis.call('HMGET', customer, 's', 'v', 'e', 'n', 'p', 'a', 'm',
                      'c', 'u')
local exists = cur[1] ~= false

if not sd.precondition(exists, exists and sd.etag(cur[1], cur[2]),
                       if_match, if_none)
then
    return redis.error_reply('SD_PRECONDITION_FAILED '
                             .. (if_none == '*' and 'If-None-Match'
                                 or 'If-Match'))
end

-- the fields sent (false: not sent), presized as set below
local sent = {e = false, n = false, p = false, a = false, m = false}
for i = 10, #ARGV, 2 do
    sent[ARGV[i]] = ARGV[i + 1]
end

if not exists and not (sent.e and sent.n) then
    return redis.error_reply('SD_REQUIRED '
                             .. (sent.e and 'name'
                                 or sent.n and 'email' or 'email name'))
end

-- Redis runs Lua in the C locale: string.lower is ASCII-only, as in the
-- gateway's documentation of email case-insensitivity.
local new_email, old_email, ix
if sent.e then
    new_email = string.lower(sent.e)
    if exists and cur[3] then
        old_email = string.lower(cur[3])
    end
    if new_email ~= old_email then
        ix = sd.emails(emails)
        local owner = sd.email_owner(ix, new_email)
        if owner and owner ~= xid then
            return redis.error_reply('SD_EMAIL_EXISTS email')
        end
    end
end

-- the customer as it is (c: exists), then as it will be; what an update
-- changes, in the API's names and order.  A customer never updated has no
-- u: its updatedAt is its createdAt.
local h = {s = cur[1], v = cur[2], e = cur[3], n = cur[4], p = cur[5],
           a = cur[6], m = cur[7], c = cur[8], u = cur[9] or cur[8]}
-- changed: the names joined by commas, as the event carries them (one
-- string, most updates change one field: no table to build and join)
local changed
for _, f in ipairs(sd.writable_fields) do
    local v = sent[f]
    if v and ((v == '' and h[f]) or (v ~= '' and v ~= h[f])) then
        changed = changed and changed .. ',' .. sd.field_names[f]
                  or sd.field_names[f]
    end
end

if exists and not changed then
    return sd.record(w, {0, sd.pairs(h, sd.customer_fields)}, true)
end

-- presized (a table grown one element at a time is rehashed at every
-- power of two): at most the five fields, s and c, u and v
local set = {false, false, false, false, false, false, false, false, false,
             false, false, false, false, false, false, false, false, false}
local nset, clear = 0, nil
for field, value in pairs(sent) do
    if not value then
        -- not sent
    elseif value == '' then
        clear = clear or {}
        clear[#clear + 1] = field
        h[field] = nil
    else
        set[nset + 1] = field
        set[nset + 2] = value
        nset = nset + 2
        h[field] = value
    end
end

-- numbers as strings, formatted as integers: the answer and the event
-- carry them as HGETALL would (sd.pairs)
if not exists then
    local n = redis.call('INCR', seq)
    local s = string.format('%d', n)
    h.s, h.c, h.v = s, now, '1'
    set[nset + 1] = 's'
    set[nset + 2] = s
    set[nset + 3] = 'c'
    set[nset + 4] = now
    nset = nset + 4
    redis.call('HSET', order .. ':' .. string.format('%d', math.floor(n / 128)),
               s, xid)
    local count = redis.call('INCR', order .. ':n')
    if ix then
        sd.email_grow(ix, count)
    end
else
    h.v = string.format('%d', (tonumber(h.v) or 0) + 1)
    -- u from the first update on: a create stores none (it equals c),
    -- 9 bytes that take the seed example's hash from jemalloc's 160-byte
    -- class to the 128-byte one
    set[nset + 1] = 'u'
    set[nset + 2] = now
    nset = nset + 2
end

h.u = now
set[nset + 1] = 'v'
set[nset + 2] = h.v
nset = nset + 2

if clear then
    redis.call('HDEL', customer, unpack(clear))
end
redis.call('HSET', customer, unpack(set, 1, nset))

if ix then
    if old_email then
        sd.email_del(ix, old_email, xid)
    end
    sd.email_set(ix, new_email, xid)
end

local after = sd.pairs(h, sd.customer_fields)

if exists then
    sd.emit(w, 'customer.updated', xid, after, changed)
else
    sd.emit(w, 'customer.created', xid, after, nil)
end

return sd.record(w, {exists and 0 or 1, after}, true)
