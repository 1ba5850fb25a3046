-- Upsert one customer, atomically with its email index and creation order.
--
-- KEYS[1] sd:{app}:c:<externalId>  customer hash
-- KEYS[2] sd:{app}:emails          lowercase email -> externalId
-- KEYS[3] sd:{app}:order           creation order: the prefix of its buckets
--                                  sd:{app}:order:<s div 128> (s -> externalId)
--                                  and of the customer count sd:{app}:order:n
-- KEYS[4] sd:{app}:seq             creation sequence counter
-- ARGV[1] now (unix seconds), ARGV[2] externalId,
-- ARGV[3..] field/value pairs, already validated by the gateway:
--   e email, n name, p phone, a avatarUrl, m metadata (compact JSON);
--   an empty value clears the field (only p, a and m can be empty).
--
-- Returns {wasCreated (0|1), HGETALL of the customer} or one of the errors
-- SD_REQUIRED <field>... (create without email/name) and SD_EMAIL_EXISTS
-- <field>: each error starts with its code, as Redis expects.
-- Nothing is written before every check has passed.

local customer, emails, order, seq = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, xid = ARGV[1], ARGV[2]

local exists = redis.call('EXISTS', customer) == 1
local sent = {}
for i = 3, #ARGV, 2 do
    sent[ARGV[i]] = ARGV[i + 1]
end

if not exists then
    local missing = {}
    if sent.e == nil then missing[#missing + 1] = 'email' end
    if sent.n == nil then missing[#missing + 1] = 'name' end
    if #missing > 0 then
        return redis.error_reply('SD_REQUIRED ' .. table.concat(missing, ' '))
    end
end

-- Redis runs Lua in the C locale: string.lower is ASCII-only, as in the
-- gateway's documentation of email case-insensitivity.
local new_email, old_email
if sent.e ~= nil then
    new_email = string.lower(sent.e)
    local owner = redis.call('HGET', emails, new_email)
    if owner and owner ~= xid then
        return redis.error_reply('SD_EMAIL_EXISTS email')
    end
    if exists then
        local old = redis.call('HGET', customer, 'e')
        if old then old_email = string.lower(old) end
    end
end

if next(sent) ~= nil then
    local set, clear = {}, {}
    for field, value in pairs(sent) do
        if value == '' then
            clear[#clear + 1] = field
        else
            set[#set + 1] = field
            set[#set + 1] = value
        end
    end

    if not exists then
        local s = redis.call('INCR', seq)
        set[#set + 1] = 's'
        set[#set + 1] = s
        set[#set + 1] = 'c'
        set[#set + 1] = now
        redis.call('HSET', order .. ':' .. math.floor(s / 128), s, xid)
        redis.call('INCR', order .. ':n')
    end

    set[#set + 1] = 'u'
    set[#set + 1] = now

    if #clear > 0 then
        redis.call('HDEL', customer, unpack(clear))
    end
    redis.call('HSET', customer, unpack(set))

    if new_email and new_email ~= old_email then
        if old_email then
            redis.call('HDEL', emails, old_email)
        end
        redis.call('HSET', emails, new_email, xid)
    end
end

return {exists and 0 or 1, redis.call('HGETALL', customer)}
