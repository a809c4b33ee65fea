// Loaded into the processes of a stratum service under test (`NODE_OPTIONS=--expose-gc
// --import=<this file>`; a stratum master's worker inherits it): on SIGUSR2, two full
// collections, then the process's RSS (and V8 heap used, external memory) written to `<HASHWIRE_BENCH_PROBE_DIR>/<pid>.json` with
// the count of signals so far, so the bench reads memory held, not garbage, of processes it
// cannot ask over IPC. Does nothing else.
//
// The bench starts these processes with STEADY_HEAP_FLAGS (measure.ts): without them V8 gives
// 15–32 MiB back on its own timer, on whichever side of a reading that lands.
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.HASHWIRE_BENCH_PROBE_DIR;
if (dir) {
  let seq = 0;
  process.on('SIGUSR2', () => {
    seq++;
    globalThis.gc?.();
    globalThis.gc?.();
    const file = join(dir, `${process.pid}.json`);
    const { rss, heapUsed, external } = process.memoryUsage();
    writeFileSync(`${file}.tmp`, JSON.stringify({ seq, rss, heapUsed, external }));
    renameSync(`${file}.tmp`, file);
  });
}
