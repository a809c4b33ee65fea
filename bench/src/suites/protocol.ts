import { LineFramer } from '@hashwire/protocol';
import { opsPerSecond } from '../measure.js';
import type { BenchSuite } from '../types.js';

const submit =
  '{"id":12,"method":"mining.submit","params":["rltc1qw508d6qejxtdg4y5r3zarvary0c5xw7k.rig1","6a4f","0000002a","65f1c2a0","8c3d11e0"]}';

/** Framing cost per stratum line, against the least a framer can do: split a string on '\n'. */
export const protocolSuite: BenchSuite = {
  name: 'protocol',
  description: 'stratum line framing',
  async run(ctx) {
    const seconds = ctx.quick ? 0.3 : 2;
    const perChunk = 64;
    const chunk = Buffer.from(`${submit}\n`.repeat(perChunk));
    // Miners' packets arrive cut anywhere: split each burst in two at an odd place.
    const cut = Math.floor(chunk.length / 3) + 7;
    const a = chunk.subarray(0, cut);
    const b = chunk.subarray(cut);
    const framer = new LineFramer();
    ctx.log('protocol: framing lines');
    const framed = opsPerSecond(() => framer.push(a).length + framer.push(b).length, seconds);
    ctx.log('protocol: baseline string split');
    let carry = '';
    const baseline = opsPerSecond(() => {
      let n = 0;
      for (const part of [a, b]) {
        const lines = (carry + part.toString('utf8')).split('\n');
        carry = lines.pop() ?? '';
        n += lines.length;
      }
      return n;
    }, seconds);
    return [
      {
        name: 'protocol.framer_lines_per_s',
        value: Math.round(framed),
        unit: 'lines/s',
        higherIsBetter: true,
        baseline: { name: 'string split on \\n', value: Math.round(baseline) },
      },
    ];
  },
};
