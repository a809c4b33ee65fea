import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { poolConfigReference, poolConfigSchema } from '@hashwire/core';
import { describe, expect, it } from 'vitest';

const PAGE = fileURLToPath(new URL('../../../docs/configuration.md', import.meta.url));
const START = '<!-- generated: hashwire config reference -->\n\n';
const END = '\n<!-- end generated -->';

describe('docs/configuration.md', () => {
  it('lists every key exactly as the schema has it (regenerate with `hashwire config reference`)', () => {
    const page = readFileSync(PAGE, 'utf8');
    const start = page.indexOf(START);
    const end = page.indexOf(END);
    expect(start, 'the generated block markers').toBeGreaterThan(-1);
    expect(page.slice(start + START.length, end)).toBe(poolConfigReference());
  });

  it('has a row for every key of every section, with its default', () => {
    const reference = poolConfigReference();
    for (const [section, schema] of Object.entries(poolConfigSchema.shape)) {
      expect(reference).toContain(`### \`${section}\``);
      const defaults = schema.safeParse(section === 'chains' ? undefined : {});
      if (!defaults.success || typeof defaults.data !== 'object') continue;
      for (const [key, value] of Object.entries(defaults.data as Record<string, unknown>)) {
        const row = reference.split('\n').find((line) => line.startsWith(`| \`${section}.${key}\``));
        expect(row, `${section}.${key}`).toBeDefined();
        if (typeof value !== 'object') expect(row).toContain(`\`${JSON.stringify(value)}\``);
      }
    }
  });
});
