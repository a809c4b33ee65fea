// docs/events.md documents every event: each EventType value, each service state, and each
// field of each payload type in events.ts. A name added to the code and not to the doc fails here.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EventType } from '../src/index.js';

const doc = readFileSync(fileURLToPath(new URL('../../../docs/events.md', import.meta.url)), 'utf8');
const source = readFileSync(fileURLToPath(new URL('../src/events.ts', import.meta.url)), 'utf8');

/** The headings of the doc (`### …`), where each event is described. */
const headings = doc
  .split('\n')
  .filter((line) => line.startsWith('### '))
  .join('\n');

/** Field names of an exported interface in events.ts (top level only). */
function interfaceFields(name: string): string[] {
  const match = new RegExp(`export interface ${name}(?:<[^>]*>)? \\{\\n([\\s\\S]*?)\\n\\}`).exec(source);
  if (!match) throw new Error(`interface ${name} not found in events.ts`);
  return [...match[1]!.matchAll(/^ {2}([A-Za-z]+)\??:/gm)].map((m) => m[1]!);
}

describe('docs/events.md', () => {
  it('has a heading naming every EventType value', () => {
    const missing = Object.values(EventType).filter((name) => !headings.includes(`\`${name}\``));
    expect(missing, 'EventType values without a heading in docs/events.md').toEqual([]);
  });

  it('names every service state and the admin events', () => {
    for (const state of ['up', 'draining', 'down']) expect(headings).toContain(`\`service.<kind>.${state}\``);
    expect(headings).toContain('`admin.<action>`');
  });

  it('describes every field of every payload type', () => {
    const payloads = [
      'BlockEventData',
      'RoundClosedData',
      'WorkerEventData',
      'ServiceEventData',
      'AdminEventData',
      'WatchRemovedData',
    ];
    const missing = payloads.flatMap((name) =>
      interfaceFields(name)
        .filter((field) => !doc.includes(`\`${field}\``))
        .map((field) => `${name}.${field}`),
    );
    expect(missing, 'payload fields docs/events.md does not name').toEqual([]);
    // The parser really reads the interfaces (a regex that matched nothing would pass above).
    expect(interfaceFields('WorkerEventData')).toEqual(['chain', 'account', 'worker', 'lastShareAt']);
  });

  it('states the retention of the streams', () => {
    expect(doc).toContain('MAXLEN ~ 100000');
  });
});
