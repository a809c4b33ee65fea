import { existsSync } from 'node:fs';
import { scryptHash } from '@hashwire/chain';
import {
  GOLDEN_HEIGHT,
  type LitecoinRegtest,
  MWEB_PEGIN_HEIGHT,
  isHogEx,
  prepareRichMempool,
  startLitecoinRegtest,
} from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let regtest: LitecoinRegtest;

beforeAll(async () => {
  regtest = await startLitecoinRegtest({ nodes: 2 });
});
afterAll(async () => {
  await regtest?.stop();
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A header whose scrypt hash meets the target of `bits`, by trying nonces. */
function grind(header: Buffer, bits: number): Buffer {
  const exponent = bits >>> 24;
  const target = BigInt(bits & 0xffffff) << BigInt(8 * (exponent - 3));
  for (let nonce = 0; ; nonce++) {
    header.writeUInt32LE(nonce, 76);
    const hash = BigInt(`0x${Buffer.from(scryptHash(header)).reverse().toString('hex')}`);
    if (hash <= target) return header;
  }
}

describe('litecoin regtest pair', () => {
  it('starts two connected nodes past MWEB activation', async () => {
    const [a, b] = regtest.rpc as [
      NonNullable<(typeof regtest.rpc)[0]>,
      NonNullable<(typeof regtest.rpc)[0]>,
    ];
    expect(await a.getBlockCount()).toBe(GOLDEN_HEIGHT);
    expect(GOLDEN_HEIGHT).toBeGreaterThan(MWEB_PEGIN_HEIGHT + 1);
    expect(await a.call('getconnectioncount')).toBeGreaterThanOrEqual(1);
    expect(await b.call('getconnectioncount')).toBeGreaterThanOrEqual(1);
    const template = await a.getBlockTemplate();
    expect(template.rules).toContain('mweb');
    expect(template.mweb).toMatch(/^[0-9a-f]+$/);
    expect(template.height).toBe(GOLDEN_HEIGHT + 1);
    const last = template.transactions.at(-1);
    expect(last && isHogEx(last)).toBe(true);
    // Timing of the start, visible with --reporter=verbose.
    console.info('litecoin pair start', regtest.startMs);
  });

  it('notifies the receiver through -blocknotify when the other node mines', async () => {
    const seen = new Promise<string>((resolve) => {
      regtest.receiver.on('block', (hash, source) => {
        if (source === 'node0') resolve(hash);
      });
    });
    const [mined] = await regtest.mine(1, 1);
    expect(await seen).toBe(mined);
    await regtest.sync();
  });

  it('answers a GBT long poll when the peer finds a block', async () => {
    const node0 = regtest.nodes[0]!;
    const template = await node0.rpc.getBlockTemplate();
    const longpoll = node0.rpc.getBlockTemplate({ longpollId: template.longpollid, timeoutMs: 30_000 });
    const [mined] = await regtest.mine(1, 1);
    const next = await longpoll;
    expect(next.previousblockhash).toBe(mined);
    expect(next.height).toBe(template.height + 1);
  });

  it('surfaces submitblock verdicts: duplicate, and bad-txnmrklroot for a broken block', async () => {
    const rpc = regtest.rpc[0]!;
    await regtest.sync();
    const tip = await rpc.getBestBlockHash();
    const blockHex = await rpc.call<string>('getblock', [tip, 0]);
    expect(await rpc.submitBlock(blockHex)).toEqual({ accepted: true, reason: 'duplicate' });

    const block = Buffer.from(blockHex, 'hex');
    const header = Buffer.from(block.subarray(0, 80));
    header[36] = (header[36] as number) ^ 0xff; // merkle root no longer matches the transactions
    grind(header, header.readUInt32LE(72));
    const broken = Buffer.concat([header, block.subarray(80)]).toString('hex');
    expect(await rpc.submitBlock(broken)).toEqual({ accepted: false, reason: 'bad-txnmrklroot' });
  });

  it('prepares a mempool with a segwit spend and a peg-in that the template and the next block carry', async () => {
    const node0 = regtest.nodes[0]!;
    const rich = await prepareRichMempool(node0);
    expect(rich.txids.length).toBeGreaterThanOrEqual(3);
    const ids = rich.template.transactions.map((t) => t.txid);
    for (const txid of rich.txids) expect(ids).toContain(txid);
    const last = rich.template.transactions.at(-1)!;
    expect(isHogEx(last)).toBe(true);
    expect(rich.template.mweb).toBeTruthy();

    const [hash] = await regtest.mine(node0);
    const block = await node0.rpc.call<{ tx: string[] }>('getblock', [hash, 1]);
    for (const txid of rich.txids) expect(block.tx).toContain(txid);
    await regtest.sync();
  });

  it('keeps working after a node restart (new cookie, peers connected again)', async () => {
    const node1 = regtest.nodes[1]!;
    const height = await node1.rpc.getBlockCount();
    const oldPid = node1.pid!;
    await node1.restart();
    expect(isAlive(oldPid)).toBe(false);
    expect(await node1.rpc.getBlockCount()).toBe(height);
    await regtest.connect();
    await regtest.mine(0, 2);
    await regtest.waitForHeight(height + 2);
  });

  it('stop leaves no process and no datadir', async () => {
    const pids = regtest.nodes.map((n) => n.pid!);
    const datadirs = regtest.datadirs;
    await regtest.stop();
    expect(pids.map(isAlive)).toEqual([false, false]);
    expect(datadirs.map((d) => existsSync(d))).toEqual([false, false]);
  });
});
