import { readFileSync } from 'node:fs';
import Handlebars from 'handlebars';
import { z } from 'zod';

export interface RenderInputIssue {
  /** Dotted path of the offending field, e.g. `frontend.tls.certificate` or `servers.2.port`. */
  path: string;
  message: string;
}

/** A render input was rejected; `issues` names every bad field. */
export class RenderInputError extends Error {
  override readonly name = 'RenderInputError';
  constructor(
    readonly what: string,
    readonly issues: RenderInputIssue[],
  ) {
    super(`${what} render input is invalid:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`);
  }
}

/** Validates `input` with `schema`, or throws a RenderInputError listing every problem by path. */
export function parseInput<S extends z.ZodType>(what: string, schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new RenderInputError(
    what,
    result.error.issues.flatMap((issue) => {
      const at = issue.path.map(String);
      // A typo is reported at the misspelt key itself.
      if (issue.code === 'unrecognized_keys')
        return issue.keys.map((key) => ({ path: [...at, key].join('.'), message: 'unknown field' }));
      return [{ path: at.length > 0 ? at.join('.') : '(input)', message: issue.message }];
    }),
  );
}

/** One word of a config line: no whitespace, quotes or comment signs that would change its meaning. */
export const word = (what: string) =>
  z
    .string({ error: `must be a string (${what})` })
    .min(1, `must not be empty (${what})`)
    .regex(/^[^\s"'#\\]*$/, `must not contain spaces, quotes, '#' or '\\' (${what})`);

/** A value that stays on its own line. */
export const oneLine = (what: string) =>
  z
    .string({ error: `must be a string (${what})` })
    .regex(/^[^\r\n]*$/, `must not contain line breaks (${what})`);

export const port = z
  .number({ error: 'must be a port number' })
  .int('must be a whole port number')
  .min(1, 'must be a port from 1 to 65535')
  .max(65535, 'must be a port from 1 to 65535');

export const positiveInt = (what: string) =>
  z
    .number({ error: `must be a number (${what})` })
    .int(`must be a whole number (${what})`)
    .positive(`must be positive (${what})`);

/** Loads and compiles a template once; strict, so a field the template names but the view lacks throws. */
export function compileTemplate(file: URL | string): Handlebars.TemplateDelegate {
  const source = readFileSync(file, 'utf8');
  return Handlebars.compile(source, { noEscape: true, strict: true });
}
