import {
  bitsToTarget,
  buildHeader,
  hashMeetsTarget,
  merkleRootFromBranch,
  powHash,
  prevHashFromStratum,
  sha256d,
  targetToBuffer,
} from '@hashwire/chain';
import type { Job } from '@hashwire/protocol';

/**
 * What a miner does for one extranonce pair: the first nonce (8 hex digits, as `mining.submit`
 * sends it) whose scrypt hash meets the job's network target (or `target`, a share target as
 * 32 little-endian bytes) — or, with `meetsTarget: false`, the first that misses it, for tests
 * of a block candidate that is not one.
 */
export function grindNonce(
  job: Pick<Job, 'jobId' | 'coinb1' | 'coinb2' | 'merkleBranch' | 'version' | 'prevhash' | 'ntime' | 'nbits'>,
  extranonce1: Buffer,
  extranonce2: Buffer,
  options: { meetsTarget?: boolean; target?: Buffer } = {},
): string {
  const meets = options.meetsTarget ?? true;
  const coinbase = sha256d(
    Buffer.concat([Buffer.from(job.coinb1, 'hex'), extranonce1, extranonce2, Buffer.from(job.coinb2, 'hex')]),
  );
  const root = merkleRootFromBranch(
    coinbase,
    job.merkleBranch.map((h) => Buffer.from(h, 'hex')),
  );
  const target = options.target ?? targetToBuffer(bitsToTarget(job.nbits));
  for (let nonce = 0; nonce <= 0xffffffff; nonce++) {
    const header = buildHeader({
      version: Number.parseInt(job.version, 16),
      prevHash: prevHashFromStratum(job.prevhash),
      merkleRoot: root,
      time: Number.parseInt(job.ntime, 16),
      bits: Number.parseInt(job.nbits, 16),
      nonce,
    });
    if (hashMeetsTarget(powHash('scrypt', header), target) === meets)
      return nonce.toString(16).padStart(8, '0');
  }
  throw new Error(`no nonce ${meets ? 'meets' : 'misses'} the target of job ${job.jobId}`);
}
