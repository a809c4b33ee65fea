import * as z from 'zod';
import { poolConfigSchema } from './pool-config-schema.js';

/** One problem of a pool config: where (`stratum.vardiff.targetSharesPerMin`), what, and what would do. */
export interface PoolConfigIssue {
  /** Key path, arrays by index: `chains[0].daemons[0].url`; empty for the file as a whole. */
  path: string;
  message: string;
  /** Allowed values or range, e.g. `info, debug` or `1 to 64`. */
  allowed?: string;
  /** The env variable or `--set` flag the bad value came from; absent for the file and defaults. */
  source?: string;
}

/** A pool config that cannot be used; `issues` lists every problem, and so does the message (one per line). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly issues: readonly PoolConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
  }
}

export function formatIssue(issue: PoolConfigIssue): string {
  const allowed = issue.allowed ? ` (allowed: ${issue.allowed})` : '';
  const source = issue.source ? ` [from ${issue.source}]` : '';
  return `${issue.path ? `${issue.path}: ` : ''}${issue.message}${allowed}${source}`;
}

export type PathSegment = string | number;

export function formatPath(segments: readonly PathSegment[]): string {
  let text = '';
  for (const segment of segments) {
    text += typeof segment === 'number' ? `[${segment}]` : text === '' ? segment : `.${segment}`;
  }
  return text;
}

/** A JSON Schema node as zod writes it (only what is read here). */
export interface SchemaNode {
  type?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  pattern?: string;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  additionalProperties?: SchemaNode | boolean;
  items?: SchemaNode | false;
  prefixItems?: SchemaNode[];
}

let rootNode: SchemaNode | undefined;

/** The pool config schema as JSON Schema (input side: defaults and optional keys as a user writes them). */
export function poolConfigJsonSchema(): SchemaNode {
  rootNode ??= z.toJSONSchema(poolConfigSchema, { io: 'input' }) as SchemaNode;
  return rootNode;
}

/** The schema node of a key path, or undefined when no such key exists. */
export function schemaNodeAt(segments: readonly PathSegment[]): SchemaNode | undefined {
  let node: SchemaNode | undefined = poolConfigJsonSchema();
  for (const segment of segments) {
    if (!node) return undefined;
    if (node.type === 'array') {
      if (typeof segment !== 'number') return undefined;
      node = node.prefixItems ? node.prefixItems[segment] : node.items || undefined;
    } else if (node.type === 'object') {
      const key = String(segment);
      node =
        node.properties?.[key] ??
        (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined);
    } else {
      return undefined;
    }
  }
  return node;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        previous[j]! + 1,
        row[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = row;
  }
  return previous[b.length]!;
}

/** The candidate closest to a typo, if close enough to be what was meant. */
export function suggest(input: string, candidates: readonly string[]): string | undefined {
  const folded = input.toLowerCase().replace(/[-_]/g, '');
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(folded, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

/** What a schema node allows, in words: enum values, a range, or true/false. */
export function allowedText(node: SchemaNode | undefined): string | undefined {
  if (!node) return undefined;
  if (node.enum) return node.enum.map(String).join(', ');
  if (node.type === 'boolean') return 'true, false';
  if (node.type === 'integer' || node.type === 'number') {
    const kind = node.type === 'integer' ? 'an integer' : 'a number';
    const low =
      node.exclusiveMinimum !== undefined
        ? `above ${node.exclusiveMinimum}`
        : node.minimum !== undefined
          ? `${node.minimum}`
          : undefined;
    if (node.maximum !== undefined && node.minimum !== undefined)
      return `${kind} from ${node.minimum} to ${node.maximum}`;
    if (low !== undefined) return `${kind} ${node.minimum !== undefined ? `from ${low}` : low}`;
    return kind;
  }
  return undefined;
}

export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a table';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}

function valueAt(input: unknown, segments: readonly PathSegment[]): unknown {
  let value = input;
  for (const segment of segments) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[segment as string];
  }
  return value;
}

const TYPE_WORDS: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  array: 'a list',
  object: 'a table',
  tuple: 'a list',
  record: 'a table',
};

/** Turns zod's issues into ours: a path each, unknown keys one by one with a suggestion. */
export function issuesFromZod(error: z.ZodError, input: unknown): PoolConfigIssue[] {
  const issues: PoolConfigIssue[] = [];
  for (const issue of error.issues) {
    const segments = issue.path as PathSegment[];
    const path = formatPath(segments);
    const node = schemaNodeAt(segments);
    const value = valueAt(input, segments);
    const allowed = allowedText(node);
    const withAllowed = (message: string): PoolConfigIssue => ({
      path,
      message,
      ...(allowed ? { allowed } : {}),
    });
    switch (issue.code) {
      case 'unrecognized_keys': {
        const known = Object.keys(node?.properties ?? {});
        for (const key of issue.keys) {
          const near = suggest(key, known);
          issues.push({
            path: formatPath([...segments, key]),
            message: `unknown key${near ? `; did you mean "${near}"?` : ''}`,
            allowed: known.join(', '),
          });
        }
        break;
      }
      case 'invalid_type': {
        const expected =
          node?.type === 'integer' ? 'an integer' : (TYPE_WORDS[issue.expected] ?? issue.expected);
        if (value === undefined) issues.push(withAllowed(`is required (${expected})`));
        else if (issue.expected === 'int' && typeof value === 'number')
          issues.push(withAllowed(`must be an integer, got ${value}`));
        else issues.push(withAllowed(`must be ${expected}, got ${describeValue(value)}`));
        break;
      }
      case 'invalid_value': {
        const near = typeof value === 'string' ? suggest(value, issue.values.map(String)) : undefined;
        issues.push({
          path,
          message: `${describeValue(value)} is not allowed${near ? `; did you mean "${near}"?` : ''}`,
          allowed: issue.values.map(String).join(', '),
        });
        break;
      }
      case 'too_small':
      case 'too_big': {
        const small = issue.code === 'too_small';
        const bound = Number(small ? issue.minimum : issue.maximum);
        if (issue.origin === 'array') {
          const exact = node?.prefixItems
            ? `exactly ${node.prefixItems.length}`
            : `${small ? 'at least' : 'at most'} ${bound}`;
          issues.push({
            path,
            message: `needs ${exact} ${bound === 1 ? 'entry' : 'entries'}, got ${(value as unknown[]).length}`,
          });
        } else if (issue.origin === 'string') {
          issues.push({
            path,
            message: small
              ? `must not be shorter than ${bound} characters`
              : `must not be longer than ${bound} characters`,
          });
        } else {
          const word = small
            ? issue.inclusive
              ? 'at least'
              : 'above'
            : issue.inclusive
              ? 'at most'
              : 'below';
          issues.push(withAllowed(`must be ${word} ${bound}, got ${String(value)}`));
        }
        break;
      }
      case 'invalid_format':
        issues.push({ path, message: `${issue.message}, got ${describeValue(value)}` });
        break;
      default:
        issues.push(withAllowed(issue.message));
    }
  }
  return issues;
}
