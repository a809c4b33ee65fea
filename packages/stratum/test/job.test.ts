import { BITCOIN_MAIN, prevHashFromStratum } from '@hashwire/chain';
import {
  JobBook,
  JobError,
  createJobDifficulties,
  difficultyForJob,
  prepareJob,
  recordJobSent,
} from '@hashwire/stratum';
import { describe, expect, it } from 'vitest';
import { makeJob } from './share-fixtures.js';

const prepare = { params: BITCOIN_MAIN, extranonce1Size: 4, extranonce2Size: 8 };
const newTip = { previousblockhash: `0000000000000000000${'a'.repeat(45)}` };

function book(maxJobs?: number) {
  return new JobBook({ ...prepare, chain: 'btc-main', ...(maxJobs !== undefined && { maxJobs }) });
}

describe('prepareJob', () => {
  const job = makeJob({ cleanJobs: false });
  const prepared = prepareJob(job, prepare);

  it('turns the hex into bytes once: coinbase with its extranonce slot, packed branch, header template', () => {
    const coinb1 = Buffer.from(job.coinb1, 'hex');
    expect(prepared.coinbase.length).toBe(coinb1.length + 12 + job.coinb2.length / 2);
    expect(prepared.coinbase.subarray(0, coinb1.length)).toEqual(coinb1);
    expect(prepared.coinbase.subarray(coinb1.length + 12).toString('hex')).toBe(job.coinb2);
    expect(prepared.extranonce1Offset).toBe(coinb1.length);
    expect(prepared.extranonce2Offset).toBe(coinb1.length + 4);
    expect(prepared.branch.toString('hex')).toBe(job.merkleBranch.join(''));
    expect(prepared.header.length).toBe(80);
    // prevhash in header byte order (the stratum words swapped back), nbits and ntime little-endian
    expect(prepared.header.subarray(4, 36)).toEqual(prevHashFromStratum(job.prevhash));
    expect(prepared.header.readUInt32LE(72)).toBe(0x17083830);
    expect(prepared.header.readUInt32LE(68)).toBe(Number.parseInt(job.ntime, 16));
    expect(prepared.version).toBe(0x20000000);
    // network target little-endian: the top (last) bytes are zero for a hard target
    expect(prepared.networkTarget.subarray(23).every((b) => b === 0)).toBe(true);
    expect(prepared.networkTarget[0]).toBe(0xff);
  });

  it('serializes mining.notify once, in wire order, with and without clean_jobs', () => {
    const line = prepared.notifyLine.toString();
    expect(line.endsWith('\n')).toBe(true);
    expect(JSON.parse(line)).toEqual({
      id: null,
      method: 'mining.notify',
      params: [
        job.jobId,
        job.prevhash,
        job.coinb1,
        job.coinb2,
        job.merkleBranch,
        job.version,
        job.nbits,
        job.ntime,
        false,
      ],
    });
    expect(JSON.parse(prepared.notifyLineClean.toString()).params[8]).toBe(true);
    const clean = prepareJob(makeJob({ cleanJobs: true }), prepare);
    expect(clean.notifyLineClean).toBe(clean.notifyLine);
  });

  it('refuses a job whose fields are not the contract hex, naming the field', () => {
    const bad = (patch: object) => () => prepareJob({ ...job, ...patch }, prepare);
    expect(bad({ coinb1: 'abc' })).toThrow(/coinb1/);
    expect(bad({ prevhash: 'ff' })).toThrow(/prevhash/);
    expect(bad({ ntime: '1234567' })).toThrow(/ntime/);
    expect(bad({ merkleBranch: ['zz'] })).toThrow(/merkleBranch\[0\]/);
    expect(bad({ target: 'x'.repeat(64) })).toThrow(JobError);
  });
});

describe('JobBook', () => {
  it('holds current jobs by id and makes earlier-prevhash jobs stale on a new prevhash', () => {
    const jobs = book();
    expect(jobs.add(makeJob({ jobId: 'a' })).status).toBe('added');
    const refresh = jobs.add(makeJob({ jobId: 'b', cleanJobs: false }));
    expect(refresh).toMatchObject({ status: 'added', clean: false, staled: 0 });
    expect(jobs.get('a')!.stale).toBe(false);

    // The jobmanager forgot clean_jobs on a new block: the book still sends it clean.
    const block = jobs.add(makeJob({ jobId: 'c', cleanJobs: false, template: newTip }));
    expect(block).toMatchObject({ status: 'added', clean: true, staled: 2 });
    expect(JSON.parse(jobs.current!.notifyLine.toString()).params[8]).toBe(true);
    expect(jobs.get('a')!.stale).toBe(true);
    expect(jobs.get('b')!.stale).toBe(true);
    expect(jobs.get('c')!.stale).toBe(false);
    expect(jobs.current!.jobId).toBe('c');
    expect(jobs.stats).toMatchObject({ added: 3, staled: 2 });
  });

  it('keeps a bounded history, dropping the oldest job and its duplicate set', () => {
    const jobs = book(3);
    for (const id of ['1', '2', '3', '4', '5']) jobs.add(makeJob({ jobId: id, cleanJobs: false }));
    expect(jobs.size).toBe(3);
    expect(jobs.get('1')).toBeUndefined();
    expect(jobs.get('2')).toBeUndefined();
    expect(jobs.get('5')).toBeDefined();
    expect(jobs.stats.evicted).toBe(2);
  });

  it('fences jobs from a lower epoch and counts them', () => {
    const jobs = book();
    jobs.add(makeJob({ jobId: 'x', epoch: 5 }));
    expect(jobs.add(makeJob({ jobId: 'old', epoch: 4, template: newTip }))).toEqual({
      status: 'fenced',
      highestEpoch: 5,
    });
    expect(jobs.get('old')).toBeUndefined();
    expect(jobs.current!.jobId).toBe('x');
    expect(jobs.get('x')!.stale).toBe(false);
    expect(jobs.stats.fenced).toBe(1);
    // The new leader (epoch+1) is taken, and the same epoch again is fine.
    expect(jobs.add(makeJob({ jobId: 'y', epoch: 6 })).status).toBe('added');
    expect(jobs.add(makeJob({ jobId: 'z', epoch: 6 })).status).toBe('added');
    expect(jobs.add(makeJob({ jobId: 'w', epoch: 5 })).status).toBe('fenced');
    expect(jobs.highestEpoch).toBe(6);
  });

  it('treats a replayed job (same id and epoch) as known, and replaces it from a newer epoch', () => {
    const jobs = book();
    const first = jobs.add(makeJob({ jobId: 'r', epoch: 1 }));
    const again = jobs.add(makeJob({ jobId: 'r', epoch: 1 }));
    expect(again.status).toBe('known');
    expect(again.status === 'known' && first.status === 'added' && again.job === first.job).toBe(true);
    const newer = jobs.add(makeJob({ jobId: 'r', epoch: 2 }));
    expect(newer.status).toBe('added');
    expect(jobs.get('r')!.epoch).toBe(2);
    expect(jobs.size).toBe(1);
  });

  it('refuses a job for another chain', () => {
    const jobs = book();
    expect(() => jobs.add({ ...makeJob(), chain: 'ltc-main' })).toThrow(/ltc-main/);
  });

  it("adopts another server's jobs as older ones: never current, stale on another prevhash, sent when its own feed delivers one", () => {
    const old = book();
    old.add(makeJob({ jobId: 'p1', template: newTip }));
    old.add(makeJob({ jobId: 'a' }));
    old.add(makeJob({ jobId: 'b', cleanJobs: false }));
    old.add(makeJob({ jobId: 'c', cleanJobs: false }));
    // The new server subscribed when b was current; c is still on its way to it.
    const next = book();
    next.add(makeJob({ jobId: 'b', cleanJobs: false }));
    expect(next.adopt(old.handed())).toBe(3);
    expect(next.current!.jobId).toBe('b');
    expect(next.get('a')!.stale).toBe(false);
    expect(next.get('p1')!.stale).toBe(true);
    expect(next.get('c')!.stale).toBe(false);
    // A share the old server credited on c, handed with its session, stays a duplicate when the
    // feed delivers c here; c is new here, so it becomes current and goes to the miners.
    next.get('c')!.dedupe.add('key-1');
    expect(next.add(makeJob({ jobId: 'c', cleanJobs: false }))).toMatchObject({ status: 'added' });
    expect(next.current!.jobId).toBe('c');
    expect(next.get('c')!.dedupe.has('key-1')).toBe(true);
    // A second delivery of c is a replay as always.
    expect(next.add(makeJob({ jobId: 'c', cleanJobs: false })).status).toBe('known');
    // Adopted jobs are the oldest: the bounded history drops them first.
    const small = book(2);
    small.add(makeJob({ jobId: 'c', cleanJobs: false }));
    expect(small.adopt(old.handed())).toBe(3);
    expect([small.get('b'), small.get('c')].every(Boolean)).toBe(true);
    expect(small.get('a')).toBeUndefined();
  });

  it('tells a watcher of every share key it takes until unwatched, and lists those it holds', () => {
    const jobs = book();
    jobs.add(makeJob({ jobId: 'a' }));
    jobs.get('a')!.dedupe.add('k1');
    expect([...jobs.acceptedKeys()]).toEqual([['a', 'k1']]);
    const seen: string[] = [];
    const unwatch = jobs.watchAccepted((jobId, key) => seen.push(`${jobId}/${key}`));
    jobs.get('a')!.dedupe.add('k2');
    jobs.add(makeJob({ jobId: 'b', cleanJobs: false }));
    jobs.get('b')!.dedupe.add('k3');
    jobs.get('b')!.dedupe.add('k3');
    unwatch();
    jobs.get('b')!.dedupe.add('k4');
    expect(seen).toEqual(['a/k2', 'b/k3']);
  });
});

describe('job difficulties (a difficulty change applies to jobs sent after it)', () => {
  it('remembers the difficulty each job went out with, first sending wins, bounded', () => {
    const state = createJobDifficulties();
    recordJobSent(state, 'a', 8);
    recordJobSent(state, 'b', 16);
    recordJobSent(state, 'a', 16); // re-sent after the change: the miner may still work at 8
    expect(difficultyForJob(state, 'a')).toBe(8);
    expect(difficultyForJob(state, 'b')).toBe(16);
    expect(difficultyForJob(state, 'zz')).toBeUndefined();
    for (let i = 0; i < 20; i++) recordJobSent(state, `j${i}`, i + 1, 4);
    expect(state.jobIds).toEqual(['j16', 'j17', 'j18', 'j19']);
    expect(difficultyForJob(state, 'a')).toBeUndefined();
    expect(JSON.parse(JSON.stringify(state))).toEqual(state);
  });
});
