#!lua flags=no-writes
-- The number of the newest event of an app's change feed (0 when none):
-- what a waiting long poll checks each turn.
--
-- KEYS[1] sd:{app}:eventseq (see lib.lua)

return tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
