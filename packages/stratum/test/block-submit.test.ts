import { RpcErrorCode, type RpcMethods } from '@hashwire/protocol';
import { RpcError } from '@hashwire/rpc';
import { BlockSubmitter, type BlockTarget, BlockUnansweredError, judgeWork } from '@hashwire/stratum';
import { describe, expect, it } from 'vitest';

type Request = RpcMethods['jm.submitBlock']['req'];
type Reply = RpcMethods['jm.submitBlock']['rep'];

const request = (jobId: string): Request => ({
  chain: 'ltc',
  jobId,
  extranonce1: '00000001',
  extranonce2: '00000000',
  ntime: '00000000',
  nonce: '00000000',
  version: '20000000',
  shareId: `share-${jobId}`,
});

/** A jobmanager stand-in: answers with `answer`, and records what it was asked. */
function target(id: string, answer: (req: Request) => Promise<Reply>, heard = true) {
  const calls: string[] = [];
  const t: BlockTarget & { calls: string[] } = {
    id,
    heard,
    calls,
    submit: (req) => {
      calls.push(req.jobId);
      return answer(req);
    },
  };
  return t;
}

const unavailable = () => Promise.reject(new RpcError(RpcErrorCode.Unavailable, 'connection to server lost'));
const accepted = (req: Request): Promise<Reply> =>
  Promise.resolve({ accepted: true, hash: `h-${req.jobId}` });

function submitter(targets: () => BlockTarget[], parents: Record<string, string> = {}) {
  return new BlockSubmitter({
    targets,
    issuerOf: () => undefined,
    parentOf: (jobId) => parents[jobId],
    retryMs: 60_000, // retried by the test, through retry() and tipChanged()
  });
}

describe('BlockSubmitter', () => {
  it('holds a candidate no jobmanager answers and submits it to the first one that appears', async () => {
    let targets: BlockTarget[] = [];
    const s = submitter(() => targets);
    const reply = s.submit(request('j1'));
    await Promise.resolve();
    expect(s.heldCount()).toBe(1);
    targets = [target('jm-dead', unavailable)];
    s.retry();
    await new Promise((r) => setImmediate(r));
    expect(s.heldCount()).toBe(1);
    const back = target('jm-back', accepted);
    targets = [target('jm-dead', unavailable), back];
    s.retry();
    await expect(reply).resolves.toEqual({ accepted: true, hash: 'h-j1' });
    expect(back.calls).toEqual(['j1']);
    expect(s.heldCount()).toBe(0);
    expect(s.stats).toMatchObject({ heldTotal: 1, unanswered: 0 });
  });

  it('a job on another parent: one last try, then stale; on the same parent it stays held', async () => {
    const s = submitter(() => [target('jm-1', unavailable)], { j1: 'parent-a', j2: 'parent-a' });
    const onA = s.submit(request('j1'));
    const sameParent = s.submit(request('j2'));
    await new Promise((r) => setImmediate(r));
    s.tipChanged('parent-a');
    await new Promise((r) => setImmediate(r));
    expect(s.heldCount()).toBe(2);
    s.tipChanged('parent-b');
    const error = await onA.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BlockUnansweredError);
    expect((error as BlockUnansweredError).stale).toBe(true);
    expect((error as Error).message).toMatch(
      /^stale: the chain moved on .* last: jm-1: connection to server lost\)$/,
    );
    await expect(sameParent).rejects.toMatchObject({ stale: true });
    expect(s.stats).toMatchObject({ unanswered: 2, staleUnanswered: 2 });
  });

  it('a job on another parent while an attempt still waits on a dead jobmanager: the last try goes to the one there now', async () => {
    // Every jobmanager was killed and came back under the same id: the candidate's attempt still
    // waits on the dead one's deadline when the restarted group publishes a job on the new tip
    // (that attempt has tried jm-1 already, so it does not ask the restarted jm-1).
    let timeOut: (error: Error) => void = () => {};
    const dead = target(
      'jm-1',
      () =>
        new Promise<Reply>((_, reject) => {
          timeOut = reject;
        }),
    );
    let targets: BlockTarget[] = [dead];
    const s = submitter(() => targets, { j1: 'parent-a' });
    const reply = s.submit(request('j1'));
    await new Promise((r) => setImmediate(r));
    expect(dead.calls).toEqual(['j1']);
    const back = target('jm-1', (req) =>
      Promise.resolve({ accepted: false, hash: `h-${req.jobId}`, stale: true }),
    );
    targets = [back];
    s.tipChanged('parent-b');
    timeOut(new RpcError(RpcErrorCode.Timeout, 'no answer within 5000 ms'));
    // Judged by the restarted jobmanager (which records it), not given up unanswered.
    await expect(reply).resolves.toEqual({ accepted: false, hash: 'h-j1', stale: true });
    expect(back.calls).toEqual(['j1']);
    expect(s.stats).toMatchObject({ unanswered: 0, staleUnanswered: 0 });
  });

  it("errors from a jobmanager we do not hear from are no verdict (its port may be another process's); from one we hear, BadRequest is final", async () => {
    const badRequest = () =>
      Promise.reject(new RpcError(RpcErrorCode.BadRequest, 'job j1 is unknown or expired'));
    let targets: BlockTarget[] = [
      target(
        'jm-old-port',
        () => Promise.reject(new RpcError(RpcErrorCode.UnknownMethod, "unknown method 'jm.submitBlock'")),
        false,
      ),
      target('jm-foreign', badRequest, false),
    ];
    const s = submitter(() => targets);
    const held = s.submit(request('j1'));
    await new Promise((r) => setImmediate(r));
    expect(s.heldCount()).toBe(1);
    targets = [target('jm-ours', badRequest, true)];
    s.retry();
    await expect(held).rejects.toMatchObject({ code: RpcErrorCode.BadRequest });
    expect(s.heldCount()).toBe(0);
  });

  it('release gives up what is held, with the reason, and holds nothing after', async () => {
    const s = submitter(() => []);
    const held = s.submit(request('j1'));
    await Promise.resolve();
    s.release('the stratum server stopped');
    await expect(held).rejects.toMatchObject({
      stale: false,
      message: expect.stringMatching(/^unanswered: the stratum server stopped/),
    });
    await expect(s.submit(request('j2'))).rejects.toBeInstanceOf(BlockUnansweredError);
  });
});

describe('judgeWork', () => {
  const healthy = { jmId: 'jm-1', chain: 'ltc', healthy: true, lastOkAt: 0, lastError: null };
  it('work older than the bound is stale even when every jobmanager says healthy, and says why', () => {
    const verdict = judgeWork({
      now: 100_000,
      members: [
        { id: 'jm-1', heard: true, health: { ...healthy, lastError: 'Litecoin Core is not connected!' } },
      ],
      latest: { jobId: 'f', height: 578, createdAt: 5_000 },
      maxJobAgeMs: 90_000,
    });
    expect(verdict).toMatchObject({ groupHealthy: true, workStale: true, staleSince: 95_000 });
    expect(verdict.reasons).toEqual([
      'newest job f (height 578) is 95 s old, over 90 s: no jobmanager sent fresh work',
      'jm-1: Litecoin Core is not connected!',
    ]);
  });

  it('a silent jobmanager does not count as healthy, whatever it last said', () => {
    const verdict = judgeWork({
      now: 10_000,
      members: [{ id: 'jm-1', heard: false, health: healthy }],
      latest: { jobId: 'a', height: 1, createdAt: 9_000 },
      maxJobAgeMs: 90_000,
    });
    expect(verdict).toMatchObject({
      groupHealthy: false,
      workStale: false,
      reasons: ['jm-1: silent (not subscribed)'],
    });
  });
});
