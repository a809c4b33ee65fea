import type { LogLevel } from '@hashwire/core';
import type { StratumServiceOptions } from './service.js';

/** The JSON config. */
export interface StratumFileOptions
  extends Omit<StratumServiceOptions, 'redis' | 'keys' | 'logger' | 'curve' | 'onDrain'> {
  /** Or `redis`: ioredis options, e.g. Sentinel. */
  redisUrl?: string;
  redis?: unknown;
  /** @defaultValue 'info' */
  logLevel?: LogLevel;
  /**
   * CURVE: this stratum server's `publicKey` and `secretKeyFile` (or `secretKey`), used to call
   * jobmanagers and reporters that publish a `curveKey`.
   */
  curve?: { publicKey: string; secretKeyFile?: string; secretKey?: string };
  /** File holding the token `POST /drain` needs (or `adminToken`); without one `/drain` is refused. */
  adminTokenFile?: string;
}

export function serviceFields(config: StratumFileOptions) {
  const {
    redisUrl: _url,
    redis: _redis,
    logLevel: _logLevel,
    curve: _curve,
    adminTokenFile: _adminTokenFile,
    adminToken: _adminToken,
    ...options
  } = config;
  return options;
}
