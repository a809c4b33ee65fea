-- Take a leader lease when it is free (or refresh it when we already hold it).
-- A new holder gets a new fencing epoch, strictly greater than every earlier one.
-- KEYS[1] lease   lease:{group}  value "holder|epoch", PX ttl
-- KEYS[2] epoch   epoch:{group}  counter
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
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. epoch, 'PX', ARGV[2])
return { 1, epoch }
