-- Delete one customer with everything that hangs off it.
--
-- KEYS[1] sd:{app}:c:<externalId>  customer hash
-- KEYS[2] sd:{app}:emails          email index
-- KEYS[3] sd:{app}:order           creation order (prefix, see upsert.lua)
-- KEYS[4..] keys owned by the customer alone (notes, their order,
--           notification settings), deleted whole
-- ARGV[1] externalId
--
-- Returns 1 when deleted, 0 when there was no such customer.

local customer, emails, order = KEYS[1], KEYS[2], KEYS[3]
local xid = ARGV[1]

local found = redis.call('HMGET', customer, 'e', 's')
local email, s = found[1], tonumber(found[2])
if not email then
    return 0
end

-- the index entry goes only if it is this customer's
local lower = string.lower(email)
if redis.call('HGET', emails, lower) == xid then
    redis.call('HDEL', emails, lower)
end

if s and redis.call('HDEL', order .. ':' .. math.floor(s / 128), s) == 1 then
    redis.call('DECR', order .. ':n')
end

local owned = {customer}
for i = 4, #KEYS do
    owned[#owned + 1] = KEYS[i]
end
redis.call('DEL', unpack(owned))

return 1
