import { describe, expect, it } from 'vitest';
import { beforeJobSent, difficultyHint, newSessionState, splitUsername } from '../src/session.js';
import { resolveVardiffOptions, vardiffOnShare, vardiffOnTick } from '../src/vardiff.js';

const T0 = 1_700_000_000_000;
const options = resolveVardiffOptions({ initialDifficulty: 64, minDifficulty: 1, maxDifficulty: 1024 });

function session(difficulty = 64) {
  return newSessionState({
    sessionId: 'aaaaaaaaaaaaaaaa',
    connId: 'c',
    ip: '::1',
    port: 1,
    difficulty,
    now: T0,
  });
}

describe('vardiff', () => {
  it('keeps a miner near the target rate: no change inside the tolerance', () => {
    const s = session();
    // 18 shares in exactly a minute: on target.
    for (let i = 0; i < 17; i++) expect(vardiffOnShare(s, T0 + i * 3000, options)).toBeNull();
    expect(vardiffOnShare(s, T0 + 60_000, options)).toBeNull();
    expect(s.pendingDifficulty).toBeNull();
    expect(s.vardiff).toEqual({ windowStartMs: T0 + 60_000, windowShares: 0 });
  });

  it('raises a fast miner at most ×4 per retarget, early once a window is overfull, and never past the maximum', () => {
    const s = session();
    let changed: number | null = null;
    // 72 shares (4 × 18) in 10 s: the window is cut short.
    for (let i = 1; i <= 72 && changed === null; i++) changed = vardiffOnShare(s, T0 + 10_000, options);
    expect(changed).toBe(256);
    expect(s.pendingDifficulty).toBe(256);
    for (let i = 1; i <= 72; i++) vardiffOnShare(s, T0 + 20_000, options);
    expect(s.pendingDifficulty).toBe(1024); // 1024 = max, not 4096
  });

  it('lowers a slow or silent miner from the sweep, never below the session floor', () => {
    const s = session();
    expect(vardiffOnTick(s, T0 + 59_999, options)).toBeNull();
    expect(vardiffOnTick(s, T0 + 60_000, options)).toBe(16);
    s.minDifficulty = 10; // mining.configure minimum-difficulty / suggest_difficulty
    expect(vardiffOnTick(s, T0 + 120_000, options)).toBe(10);
    expect(vardiffOnTick(s, T0 + 180_000, options)).toBeNull(); // already at the floor
  });

  it('does nothing when disabled', () => {
    const s = session();
    const off = resolveVardiffOptions({ enabled: false });
    for (let i = 0; i < 1000; i++) expect(vardiffOnShare(s, T0 + 100_000, off)).toBeNull();
    expect(vardiffOnTick(s, T0 + 1e9, off)).toBeNull();
  });

  it('refuses nonsense settings with a message naming the field', () => {
    expect(() => resolveVardiffOptions({ targetSharesPerMin: 0 })).toThrow(/vardiff.targetSharesPerMin/);
    expect(() => resolveVardiffOptions({ minDifficulty: 10, maxDifficulty: 1 })).toThrow(/minDifficulty/);
  });
});

describe('session state', () => {
  it('announces a pending difficulty with the next new job and records each job at its difficulty', () => {
    const s = session(8);
    expect(beforeJobSent(s, 'j1', 16)).toBe(8); // first job: always announced
    expect(beforeJobSent(s, 'j2', 16)).toBeNull();
    s.pendingDifficulty = 32;
    expect(beforeJobSent(s, 'j3', 16)).toBe(32);
    expect(s.jobDiffs).toEqual({ jobIds: ['j1', 'j2', 'j3'], diffs: [8, 8, 32] });
    expect(JSON.parse(JSON.stringify(s))).toEqual(s); // plain data
  });

  it('re-sends a job at the difficulty it first went out with (resume), keeping the newer one for the next job', () => {
    const s = session(64);
    s.jobDiffs = { jobIds: ['j1'], diffs: [16] };
    expect(beforeJobSent(s, 'j1', 16)).toBe(16);
    expect(s).toMatchObject({ difficulty: 16, pendingDifficulty: 64 });
    expect(beforeJobSent(s, 'j2', 16)).toBe(64);
  });

  it('reads difficulty hints and usernames', () => {
    expect(difficultyHint('x,d=512')).toBe(512);
    expect(difficultyHint('d=0.01')).toBe(0.01);
    expect(difficultyHint('d=1e-3;x')).toBe(0.001);
    expect(difficultyHint('d=-1')).toBeNull();
    expect(difficultyHint('d=abc')).toBeNull();
    expect(difficultyHint(42)).toBeNull();
    expect(splitUsername('addr.rig.1')).toEqual({ account: 'addr', worker: 'rig.1' });
    expect(splitUsername('addr')).toEqual({ account: 'addr', worker: '' });
  });
});
