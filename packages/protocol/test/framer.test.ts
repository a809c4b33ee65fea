import { FrameError, LineFramer } from '@hashwire/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const subscribe = '{"id":1,"method":"mining.subscribe","params":["cpuminer/2.5.1"]}';
const authorize = '{"id":2,"method":"mining.authorize","params":["rltc1qxyz.w1","x"]}';

function feed(framer: LineFramer, chunks: Buffer[]): string[] {
  return chunks.flatMap((c) => framer.push(c));
}

describe('LineFramer', () => {
  it('yields a line split at every byte position, with LF and with CRLF', () => {
    for (const ending of ['\n', '\r\n']) {
      const bytes = Buffer.from(subscribe + ending + authorize + ending);
      for (let cut = 0; cut <= bytes.length; cut++) {
        const framer = new LineFramer();
        const lines = feed(framer, [bytes.subarray(0, cut), bytes.subarray(cut)]);
        expect(lines, `cut at ${cut} with ${JSON.stringify(ending)}`).toEqual([subscribe, authorize]);
        expect(framer.bufferedBytes).toBe(0);
      }
    }
  });

  it('hands an unfinished line to another framer, split at every byte: the line comes out once, there', () => {
    const text = '{"id":7,"method":"mining.submit","params":["w","j","e2","nt","nn"]}\r\n';
    const bytes = Buffer.from(`{"id":1}\n${text}`);
    for (let at = 0; at <= bytes.length; at++) {
      const old = new LineFramer();
      const first = old.push(bytes.subarray(0, at));
      const next = new LineFramer();
      expect(next.push(old.unfinished())).toEqual([]);
      const rest = next.push(bytes.subarray(at));
      expect([...first, ...rest]).toEqual(['{"id":1}', text.trimEnd()]);
    }
    expect(new LineFramer().unfinished()).toEqual(Buffer.alloc(0));
  });

  it('yields a line fed one byte at a time', () => {
    const framer = new LineFramer();
    const bytes = Buffer.from(`${subscribe}\r\n`);
    const lines: string[] = [];
    for (const b of bytes) lines.push(...framer.push(Buffer.from([b])));
    expect(lines).toEqual([subscribe]);
  });

  it('yields many lines from one chunk, in order, skipping empty lines', () => {
    const framer = new LineFramer();
    const chunk = Buffer.from(`${subscribe}\n\n\r\n${authorize}\n${subscribe}`);
    expect(framer.push(chunk)).toEqual([subscribe, authorize]);
    expect(framer.push(Buffer.from('\n'))).toEqual([subscribe]);
  });

  it('keeps multi-byte UTF-8 characters split across chunks intact', () => {
    const framer = new LineFramer();
    const bytes = Buffer.from('{"worker":"mineur-é€"}\n');
    const at = bytes.indexOf(0xe2) + 1; // inside the euro sign
    expect(feed(framer, [bytes.subarray(0, at), bytes.subarray(at)])).toEqual(['{"worker":"mineur-é€"}']);
  });

  it('does not hold on to the caller’s chunk buffer', () => {
    const framer = new LineFramer();
    const chunk = Buffer.from('{"id":1');
    framer.push(chunk);
    chunk.fill(0x20);
    expect(framer.push(Buffer.from('}\n'))).toEqual(['{"id":1}']);
  });

  it('accepts a line of exactly the maximum length and refuses one byte more', () => {
    const framer = new LineFramer({ maxLineBytes: 10 });
    expect(framer.push(Buffer.from('0123456789\r\n'))).toEqual(['0123456789']);
    expect(() => framer.push(Buffer.from('0123456789A\n'))).toThrow(FrameError);
  });

  it('refuses an endless line as soon as the cap is passed, without waiting for a newline', () => {
    const framer = new LineFramer({ maxLineBytes: 1024 });
    framer.push(Buffer.alloc(1000, 0x61));
    let error: unknown;
    try {
      framer.push(Buffer.alloc(1024 * 1024, 0x61));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FrameError);
    expect((error as FrameError).message).toMatch(/exceeds the maximum of 1024 bytes/);
    expect(framer.bufferedBytes).toBe(0);
  });

  it('counts a CRLF split across chunks as a line ending, not as content', () => {
    const framer = new LineFramer({ maxLineBytes: 4 });
    expect(framer.push(Buffer.from('abcd\r'))).toEqual([]);
    expect(framer.push(Buffer.from('\n'))).toEqual(['abcd']);
  });

  it('property: any chunking of any lines gives back the same lines', () => {
    const line = fc.string({ minLength: 1, maxLength: 80 }).filter((s) => !/[\r\n]/.test(s));
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.boolean(),
        (lines, cuts, crlf) => {
          const bytes = Buffer.from(lines.map((l) => l + (crlf ? '\r\n' : '\n')).join(''));
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          const chunks: Buffer[] = [];
          let prev = 0;
          for (const p of [...points, bytes.length]) {
            chunks.push(bytes.subarray(prev, p));
            prev = p;
          }
          const framer = new LineFramer({ maxLineBytes: 1024 });
          expect(feed(framer, chunks)).toEqual(lines);
        },
      ),
    );
  });
});
