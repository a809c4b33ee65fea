import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

/** Path of golden file `name` under test/golden/. */
export function goldenPath(name: string): string {
  return fileURLToPath(new URL(`./golden/${name}`, import.meta.url));
}

/**
 * Compares `text` with the golden file. `UPDATE_GOLDEN=1` rewrites it instead (then review the
 * diff before committing); a missing golden fails otherwise.
 */
export function expectGolden(name: string, text: string): void {
  const file = goldenPath(name);
  if (process.env.UPDATE_GOLDEN === '1') {
    writeFileSync(file, text);
    return;
  }
  expect(existsSync(file), `golden ${name} is missing: run with UPDATE_GOLDEN=1 and review it`).toBe(true);
  expect(text).toBe(readFileSync(file, 'utf8'));
}
