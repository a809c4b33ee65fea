/** `value` as one /bin/sh word: single-quoted, with each inner quote closed, escaped and reopened. */
function shellWord(value: string): string {
  return `'${value.replace(/'/g, "'\\''")}'`;
}

/**
 * What a coin daemon's `-blocknotify` runs so that every jobmanager of `channel`'s chain hears of
 * a new block at once: `redis-cli -u <url> PUBLISH <channel> %s` (the daemon puts the block hash
 * in place of `%s`). It needs only redis-cli on the daemon's machine, and it stays right across
 * jobmanager restarts, since the daemon names Redis, not a jobmanager. `redisUrl` must be the
 * URL of the pool's Redis (a Sentinel-managed one: its current master's).
 */
export function blocknotifyCommand(redisUrl: string, channel: string): string {
  let url: URL;
  try {
    url = new URL(redisUrl);
  } catch {
    throw new TypeError(`blocknotify: redis URL ${JSON.stringify(redisUrl)} is not a URL`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new TypeError(`blocknotify: redis-cli needs a redis:// or rediss:// URL, got ${url.protocol}//`);
  }
  const tls = url.protocol === 'rediss:' ? ' --tls' : '';
  return `redis-cli${tls} -u ${shellWord(redisUrl)} PUBLISH ${shellWord(channel)} %s`;
}
