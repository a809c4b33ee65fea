/**
 * The foundation's acceptance test: from a real litecoind template (segwit spend, MWEB peg-in,
 * HogEx) to a block litecoind accepts and its peer follows, built only with the chain package:
 * our coinbase, merkle root, header, scrypt and serialization.
 */
import { inspect } from 'node:util';
import {
  AddressError,
  type BlockTemplate,
  DaemonClient,
  DaemonPool,
  DaemonUnreachableError,
  LITECOIN_REGTEST,
  assembleCoinbase,
  assembleTemplateBlock,
  bitsToTarget,
  blockHashHex,
  buildCoinbaseForTemplate,
  buildHeader,
  hashFromDisplayHex,
  hashMeetsTarget,
  merkleRootFromBranch,
  parseBlockTemplate,
  powHash,
  scryptHash,
  serializeTemplateBlock,
  sha256d,
  targetToBuffer,
  templateMerkleBranch,
} from '@hashwire/chain';
import {
  type LitecoinRegtest,
  type RichMempool,
  getFreePort,
  isHogEx,
  prepareRichMempool,
  startLitecoinRegtest,
} from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const POOL_TAG = '/hashwire/';
const EXTRANONCE1 = Buffer.from('f000000d', 'hex');
const EXTRANONCE2 = Buffer.from('0000000000000001', 'hex');

interface DecodedTx {
  txid: string;
  vin: { coinbase?: string; txinwitness?: string[] }[];
  vout: {
    value: number;
    scriptPubKey: { hex: string; type: string; address?: string; addresses?: string[] };
  }[];
}

interface DecodedBlock {
  hash: string;
  height: number;
  merkleroot: string;
  tx: DecodedTx[];
}

let regtest: LitecoinRegtest;
let rich: RichMempool;
let poolAddress: string;

beforeAll(async () => {
  regtest = await startLitecoinRegtest({ nodes: 2 });
  poolAddress = await regtest.rpc[0]!.call<string>('getnewaddress', ['', 'bech32']);
});

afterAll(async () => {
  await regtest?.stop();
});

/** Tries nonces from 0 with the chain package's scrypt until the header meets the target of its bits. */
function grind(header: Buffer): number {
  const target = targetToBuffer(bitsToTarget(header.readUInt32LE(72)));
  for (let nonce = 0; nonce <= 0xffffffff; nonce++) {
    header.writeUInt32LE(nonce, 76);
    if (hashMeetsTarget(powHash(LITECOIN_REGTEST.algorithm, header), target)) return nonce;
  }
  throw new Error('no nonce meets the target');
}

const addressOf = (out: DecodedTx['vout'][number]) =>
  out.scriptPubKey.address ?? out.scriptPubKey.addresses?.[0];

describe('a litecoin regtest block built by the chain package', () => {
  it('gets a rich mempool into the template: segwit spend, MWEB peg-in, HogEx last, mweb blob', async () => {
    const node0 = regtest.nodes[0]!;
    expect(await node0.rpc.getBlockCount()).toBeGreaterThan(432);
    rich = await prepareRichMempool(node0);
    expect(rich.txids.length).toBeGreaterThanOrEqual(3);

    const spend = await node0.rpc.call<DecodedTx>('getrawtransaction', [rich.segwitSpend, true]);
    expect(spend.vin[0]?.txinwitness?.length).toBeGreaterThan(0);
    const pegIn = await node0.rpc.call<{ mweb?: { pegins?: unknown[] } }>('getmempoolentry', [rich.pegIn]);
    expect(pegIn.mweb?.pegins?.length).toBeGreaterThan(0);

    const template = parseBlockTemplate(await node0.rpc.getBlockTemplate({ rules: ['mweb', 'segwit'] }));
    // '!segwit': a client must understand segwit to use this template.
    expect(template.rules).toEqual(expect.arrayContaining(['!segwit', 'mweb']));
    const ids = template.transactions.map((t) => t.txid);
    expect(ids).toEqual(expect.arrayContaining(rich.txids));
    expect(isHogEx(template.transactions.at(-1)!)).toBe(true);
    expect(template.mweb).toMatch(/^(?:[0-9a-f]{2})+$/);
    expect(template.default_witness_commitment).toMatch(/^6a24aa21a9ed/);
  });

  it('mines it: our coinbase, merkle root, header and scrypt; submitblock accepts; the peer follows', async () => {
    const node0 = regtest.nodes[0]!;
    const template: BlockTemplate = parseBlockTemplate(await node0.rpc.getBlockTemplate());
    for (const txid of rich.txids) expect(template.transactions.map((t) => t.txid)).toContain(txid);
    const hogEx = template.transactions.at(-1)!;
    expect(isHogEx(hogEx)).toBe(true);

    // The steps, one by one, as the README shows them.
    const coinbase = buildCoinbaseForTemplate(template, {
      params: LITECOIN_REGTEST,
      payouts: [{ address: poolAddress }],
      poolTag: POOL_TAG,
      extranonce1Size: EXTRANONCE1.length,
      extranonce2Size: EXTRANONCE2.length,
    });
    const coinbaseTxid = sha256d(assembleCoinbase(coinbase, EXTRANONCE1, EXTRANONCE2));
    const merkleRoot = merkleRootFromBranch(coinbaseTxid, templateMerkleBranch(template));
    const header = buildHeader({
      version: template.version,
      prevHash: hashFromDisplayHex(template.previousblockhash),
      merkleRoot,
      time: template.curtime,
      bits: Number.parseInt(template.bits, 16),
      nonce: 0,
    });
    const nonce = grind(header);
    // The native scrypt the grind used agrees with node:crypto's on the winning header.
    expect(powHash('scrypt', header)).toEqual(scryptHash(header));
    const block = serializeTemplateBlock({
      template,
      header,
      coinbase,
      extranonce1: EXTRANONCE1,
      extranonce2: EXTRANONCE2,
    });
    expect(block.toString('hex').endsWith(`${hogEx.data}01${template.mweb}`)).toBe(true);

    // The one function a service calls gives the same block.
    const assembled = assembleTemplateBlock({
      template,
      params: LITECOIN_REGTEST,
      payouts: [{ address: poolAddress }],
      poolTag: POOL_TAG,
      extranonce1: EXTRANONCE1,
      extranonce2: EXTRANONCE2,
      nonce,
    });
    expect(assembled.blockHex).toBe(block.toString('hex'));
    expect(assembled.header).toEqual(header);
    expect(assembled.meetsTarget).toBe(true);
    const hash = blockHashHex(header);
    expect(assembled.hashHex).toBe(hash);

    const node1 = regtest.nodes[1]!;
    const peerHasIt = new Promise<void>((resolve) => {
      regtest.receiver.on('block', (h, source) => {
        if (source === node1.name && h === hash) resolve();
      });
    });
    expect(await node0.rpc.submitBlock(assembled.blockHex)).toEqual({ accepted: true });
    expect(await node0.rpc.getBestBlockHash()).toBe(hash);

    const mined = await node0.rpc.call<DecodedBlock>('getblock', [hash, 2]);
    expect(mined.height).toBe(template.height);
    const [cb, ...rest] = mined.tx;
    expect(cb!.vin[0]!.coinbase).toContain(Buffer.from(POOL_TAG).toString('hex'));
    expect(cb!.vin[0]!.coinbase).toContain(`${EXTRANONCE1.toString('hex')}${EXTRANONCE2.toString('hex')}`);
    const payout = cb!.vout.find((o) => addressOf(o) === poolAddress);
    expect(Math.round(payout!.value * 1e8)).toBe(template.coinbasevalue);
    expect(cb!.vout.map((o) => o.scriptPubKey.hex)).toContain(template.default_witness_commitment);
    expect(rest.map((t) => t.txid)).toEqual(template.transactions.map((t) => t.txid));
    expect(rest.at(-1)!.txid).toBe(hogEx.txid);
    for (const txid of rich.txids) expect(rest.map((t) => t.txid)).toContain(txid);
    const spend = rest.find((t) => t.txid === rich.segwitSpend)!;
    expect(spend.vin[0]!.txinwitness?.length).toBeGreaterThan(0);
    const pegIn = rest.find((t) => t.txid === rich.pegIn)!;
    expect(pegIn.vout.map((o) => o.scriptPubKey.hex)).toContainEqual(expect.stringMatching(/^5920/));

    // node1 announces the block through its -blocknotify once it has validated and connected it.
    await peerHasIt;
    expect(await node1.rpc.getBestBlockHash()).toBe(hash);
  });

  it('is refused with a wrong merkle root, and the client reports the daemon reason', async () => {
    const node0 = regtest.nodes[0]!;
    const tip = await node0.rpc.getBestBlockHash();
    const template = parseBlockTemplate(await node0.rpc.getBlockTemplate());
    const good = assembleTemplateBlock({
      template,
      params: LITECOIN_REGTEST,
      payouts: [{ address: poolAddress }],
      extranonce1: EXTRANONCE1,
      extranonce2: EXTRANONCE2,
      nonce: 0,
    });
    const header = Buffer.from(good.header);
    header[36] = header[36]! ^ 0xff; // the merkle root no longer matches the transactions
    grind(header); // real proof of work, so the merkle check is what fails
    const broken = Buffer.concat([header, good.block.subarray(80)]).toString('hex');

    expect(await node0.rpc.submitBlock(broken)).toEqual({ accepted: false, reason: 'bad-txnmrklroot' });
    const pool = new DaemonPool([node0.rpc]);
    const verdict = await pool.submitBlock(broken);
    expect(verdict.accepted).toBe(false);
    expect(verdict.reason).toBe('bad-txnmrklroot');
    expect(await node0.rpc.getBestBlockHash()).toBe(tip);
  });

  it('turns a payout address of another chain into an error naming the address and the network', async () => {
    const template = parseBlockTemplate(await regtest.rpc[0]!.getBlockTemplate());
    for (const bitcoinAddress of [
      'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4',
      '1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2',
    ]) {
      const build = () =>
        assembleTemplateBlock({
          template,
          params: LITECOIN_REGTEST,
          payouts: [{ address: bitcoinAddress }],
          poolTag: POOL_TAG,
          extranonce1: EXTRANONCE1,
          extranonce2: EXTRANONCE2,
          nonce: 0,
        });
      expect(build).toThrow(AddressError);
      expect(build).toThrow(`address "${bitcoinAddress}" is for bitcoin main, expected litecoin regtest`);
    }
  });

  it('names the URL of an unreachable daemon and never its password', async () => {
    const port = await getFreePort(); // nothing listens there
    const password = 'pw-that-must-not-leak';
    const client = new DaemonClient({ url: `http://pool:${password}@127.0.0.1:${port}/`, timeoutMs: 5_000 });
    const pool = new DaemonPool([client]);
    for (const attempt of [() => client.getBlockTemplate(), () => pool.getBlockTemplate()]) {
      const error = await attempt().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(DaemonUnreachableError);
      const unreachable = error as DaemonUnreachableError;
      expect(unreachable.kind).toBe('connect');
      expect(unreachable.message).toBe(`daemon http://127.0.0.1:${port}/ getblocktemplate: ECONNREFUSED`);
      expect(inspect(unreachable, { depth: 5 })).not.toContain(password);
      expect(JSON.stringify(unreachable)).not.toContain(password);
    }
    expect(inspect(client, { depth: 5 })).not.toContain(password);
    pool.close();
  });
});
