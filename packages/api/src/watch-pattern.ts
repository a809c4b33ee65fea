/**
 * Watch patterns: globs over event names (`block.*`, `service.stratum.*`, `worker.offline`,
 * `account.<address>.*`).
 *
 * Grammar: 1–200 characters of `A-Z a-z 0-9 . _ : -` and `*`; `*` matches any run of
 * characters, dots included (as Redis PSUBSCRIBE does), and at most 4 may appear, never two in a
 * row. Nothing else (`?`, `[…]`, escapes) is taken. Such a glob splits into literal parts that
 * must appear in order: one pass with `indexOf` per part, no backtracking, so a match costs
 * O(name length × parts) at worst and a pattern cannot be made expensive to match.
 */

export const MAX_PATTERN_LENGTH = 200;
export const MAX_PATTERN_WILDCARDS = 4;

const PATTERN_CHARS = /^[A-Za-z0-9._:*-]+$/;

/** Why a pattern is refused (a sentence), or null when it is valid. */
export function patternProblem(pattern: string): string | null {
  if (pattern.length === 0) return 'must not be empty';
  if (pattern.length > MAX_PATTERN_LENGTH)
    return `is ${pattern.length} characters; at most ${MAX_PATTERN_LENGTH}`;
  if (!PATTERN_CHARS.test(pattern))
    return 'may hold only A-Z a-z 0-9 . _ : - and the wildcard * (no ?, [ ], spaces or escapes)';
  if (pattern.includes('**')) return 'must not hold two wildcards in a row (one * already matches any run)';
  const wildcards = pattern.split('*').length - 1;
  if (wildcards > MAX_PATTERN_WILDCARDS)
    return `has ${wildcards} wildcards; at most ${MAX_PATTERN_WILDCARDS} (each costs a scan of the name)`;
  return null;
}

/** Tests one event name. */
export type NameMatcher = (name: string) => boolean;

/** Compiles a valid pattern (see patternProblem) into a matcher. */
export function compilePattern(pattern: string): NameMatcher {
  const problem = patternProblem(pattern);
  if (problem) throw new TypeError(`pattern ${JSON.stringify(pattern)} ${problem}`);
  const parts = pattern.split('*');
  if (parts.length === 1) return (name) => name === pattern;
  const first = parts[0] as string;
  const last = parts[parts.length - 1] as string;
  const middle = parts.slice(1, -1).filter((p) => p !== '');
  const minLength = parts.reduce((n, p) => n + p.length, 0);
  return (name) => {
    if (name.length < minLength || !name.startsWith(first) || !name.endsWith(last)) return false;
    // Leftmost placement of each middle part is optimal for `*`-only globs: no backtracking.
    let at = first.length;
    const end = name.length - last.length;
    for (const part of middle) {
      const found = name.indexOf(part, at);
      if (found < 0 || found + part.length > end) return false;
      at = found + part.length;
    }
    return true;
  };
}

/** Whether any of an event's names (see `eventNames`) matches. */
export function matchesAny(matcher: NameMatcher, names: readonly string[]): boolean {
  for (const name of names) if (matcher(name)) return true;
  return false;
}
