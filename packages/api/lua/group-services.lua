-- A group named after a service kind (stratum, jobmanager, reporter, api) lists the pool's live
-- services of that kind beside its HTTP members. This keeps the group version in step with
-- them: when the set of services differs from the one last seen (their ids, processes, states
-- and endpoints, as a fingerprint), the version increases like for any other change, so a
-- member heartbeating with HEAD learns of it from x-group-version.
-- KEYS[1] services fingerprint  grp:{g}:services  string
-- KEYS[2] version               grp:{g}:version   counter (the same as group.lua's)
-- ARGV[1] the fingerprint of the services listed now
-- Returns the group version after the comparison.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return tonumber(redis.call('GET', KEYS[2]) or '0')
end
redis.call('SET', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 0 then
  -- As group.lua starts a counter: at the server's time in ms, so it only moves forward.
  local t = redis.call('TIME')
  redis.call('SET', KEYS[2], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end
return redis.call('INCR', KEYS[2])
