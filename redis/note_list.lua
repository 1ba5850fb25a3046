#!lua flags=no-writes
-- One page of a customer's notes, newest first.
--
-- KEYS[1] sd:{app}:c:<externalId>, KEYS[2] sd:{app}:notes:<externalId>,
-- KEYS[3] sd:{app}:notez:<externalId>
-- ARGV[1] upper bound, exclusive ("+inf" to start), ARGV[2] page size,
-- ARGV[3] scan budget, ARGV[4] lowercase text filter ("" none)
--
-- Returns {total, next bound or "", number, createdAt, text, ...} or
-- SD_NO_CUSTOMER.

if redis.call('EXISTS', KEYS[1]) == 0 then
    return redis.error_reply('SD_NO_CUSTOMER externalId')
end

local before, limit, budget = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ftext = ARGV[4]
local bound = before == '+inf' and '+inf' or '(' .. before

local ids = redis.call('ZREVRANGEBYSCORE', KEYS[3], bound, '-inf',
                       'LIMIT', 0, budget)
local out = {redis.call('ZCARD', KEYS[3]), ''}
local found, last = 0, nil

for _, n in ipairs(ids) do
    last = n
    local v = redis.call('HGET', KEYS[2], n)
    if v then
        local sep = string.find(v, ':', 1, true)
        local created, text = string.sub(v, 1, sep - 1), string.sub(v, sep + 1)
        if ftext == '' or string.find(string.lower(text), ftext, 1, true) then
            out[#out + 1] = n
            out[#out + 1] = created
            out[#out + 1] = text
            found = found + 1
            if found == limit then break end
        end
    end
end

if last and (found == limit or #ids == budget) then
    if redis.call('ZCOUNT', KEYS[3], '-inf', '(' .. last) > 0 then
        out[2] = last
    end
end

return out
