#!lua flags=no-writes
-- One page of a customer's notes, newest first.
--
-- KEYS[1] sd:{app}:c:<externalId>, KEYS[2] sd:{app}:notes:<externalId>,
-- KEYS[3] sd:{app}:notez:<externalId>
-- ARGV[1] upper bound, exclusive ("+inf" to start), ARGV[2] page size,
-- ARGV[3] scan limit, ARGV[4] lowercase text filter ("" none)
--
-- Returns {total, next bound or "", number, createdAt, text, ...} or
-- SD_NO_CUSTOMER.  Like a page of customers (list.lua), a page stops at
-- the scan limit or the cost budget (lib_scan.lua: notes read, lowercased for
-- the filter, returned), whichever comes first, with a cursor to go on.

if redis.call('EXISTS', KEYS[1]) == 0 then
    return redis.error_reply('SD_NO_CUSTOMER externalId')
end

local before, limit, scan = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ftext = ARGV[4]
local bound = before == '+inf' and '+inf' or '(' .. before

-- every note examined costs a command at least: the budget caps how many
-- one call can examine, whatever the scan limit
local want = math.min(scan, math.floor(sd.budget / sd.call))
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[3], bound, '-inf',
                       'LIMIT', 0, want)
local out = {redis.call('ZCARD', KEYS[3]), ''}
local found, last, stopped = 0, nil, #ids == want
local spent = 3 * sd.call + 16 * #ids

for _, n in ipairs(ids) do
    if found == limit or (spent >= sd.budget and last) then
        stopped = true
        break
    end
    local v = redis.call('HGET', KEYS[2], n)
    spent = spent + sd.call + sd.size(v)
    if v then
        local sep = string.find(v, ':', 1, true)
        local created, text = string.sub(v, 1, sep - 1), string.sub(v, sep + 1)
        local match = ftext == ''
        if not match then
            -- lowercasing it would go past the budget: the next call's
            if last and spent + sd.work * #text > sd.budget then
                stopped = true
                break
            end
            spent = spent + sd.work * #text
            match = string.find(string.lower(text), ftext, 1, true) ~= nil
        end
        if match then
            out[#out + 1] = n
            out[#out + 1] = created
            out[#out + 1] = text
            found = found + 1
            spent = spent + #v
        end
    end
    last = n
end

if last and stopped then
    if redis.call('ZCOUNT', KEYS[3], '-inf', '(' .. last) > 0 then
        out[2] = last
    end
end

return out
