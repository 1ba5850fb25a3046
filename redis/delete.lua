-- Delete one customer with everything that hangs off it, with its event
-- and its idempotency record, in one step.
--
-- KEYS[1..3], ARGV[1..5]: the change feed and idempotency (lib.lua)
-- KEYS[4] sd:{app}:c:<externalId>  customer hash
-- KEYS[5] sd:{app}:emails          the email index (lib_customer.lua)
-- KEYS[6] sd:{app}:order           creation order (prefix, see upsert.lua)
-- KEYS[7..] keys owned by the customer alone (notes, their order,
--           notification settings), unlinked whole
-- ARGV[6] externalId, ARGV[7] If-Match ("", "*" or ETags)
--
-- Returns 1 when deleted, 0 when there was no such customer, or
-- SD_PRECONDITION_FAILED.

local w = sd.writer()
local customer, emails, order = KEYS[4], KEYS[5], KEYS[6]
local xid, if_match = ARGV[6], ARGV[7]

local replay = sd.replay(w)
if replay then
    return replay
end

local found = redis.call('HMGET', customer, 'e', 's', 'v')
local email, s = found[1], tonumber(found[2])

if not sd.precondition(email ~= false,
                       email and sd.etag(found[2], found[3]), if_match, '')
then
    return redis.error_reply('SD_PRECONDITION_FAILED If-Match')
end

if not email then
    return 0
end

-- the index entry goes only if it is this customer's (sd.emails() first:
-- it makes the index's functions)
local ix = sd.emails(emails)
sd.email_del(ix, string.lower(email), xid)

if s and redis.call('HDEL', order .. ':' .. math.floor(s / 128), s) == 1 then
    redis.call('DECR', order .. ':n')
end

-- UNLINK: a customer's notes may be many; Redis frees them in the
-- background
redis.call('UNLINK', customer, unpack(KEYS, 7))

sd.emit(w, 'customer.deleted', xid, {})

return sd.record(w, 1)
