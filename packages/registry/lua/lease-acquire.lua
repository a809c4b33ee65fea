-- Take a leader lease when it is free (or refresh it when we already hold it).
-- A new holder gets a new fencing epoch, strictly greater than every earlier one.
-- KEYS[1] lease   lease:{group}  value "holder|epoch", PX ttl
-- KEYS[2] epoch   epoch:{group}  the last epoch given
-- ARGV[1] holder id
-- ARGV[2] ttl ms
-- Returns { 1, epoch } when we hold it, { 0, epoch, holder } with the current holder otherwise.
local current = redis.call('GET', KEYS[1])
if current then
  local sep = string.find(current, '|', 1, true)
  local holder = string.sub(current, 1, sep - 1)
  local epoch = tonumber(string.sub(current, sep + 1))
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return { 1, epoch }
  end
  return { 0, epoch, holder }
end
-- Epochs never go below the Redis server's clock in microseconds: they keep increasing even when
-- Redis lost its data (a counter would restart at 1, and every stratum server would take the new
-- leader's jobs for a deposed leader's). Milliseconds were too coarse: a lease lost and taken
-- again within one ms got the same epoch. Microseconds since 1970 stay below 2^53, exact in a
-- Lua number; '%.0f' writes them whole (Lua's default number format rounds to 14 digits).
local time = redis.call('TIME')
local epoch = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') + 1, tonumber(time[1]) * 1000000 + tonumber(time[2]))
local text = string.format('%.0f', epoch)
redis.call('SET', KEYS[2], text)
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. text, 'PX', ARGV[2])
return { 1, epoch }
