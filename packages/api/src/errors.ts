import type { z } from 'zod';

/** Where a bad input was: the path, the query string, the body or a header. */
export type InputPlace = 'path' | 'query' | 'body' | 'header';

/**
 * An error a client caused (4xx) or the API could not serve (5xx), answered as
 * `{ error: { code, message, field?, in? } }`: `field` names the input that was wrong.
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly place?: InputPlace,
  ) {
    super(message);
  }

  toJSON(): { error: { code: string; message: string; field?: string; in?: InputPlace } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.field !== undefined && { field: this.field }),
        ...(this.place !== undefined && { in: this.place }),
      },
    };
  }
}

/** The first problem zod found, as a 400 naming the field (`limit`, `cursor`, an unknown query key…). */
export function invalidInput(error: z.ZodError, place: InputPlace): ApiError {
  const issue = error.issues[0];
  if (!issue) return new ApiError(400, 'bad_request', `${place} is not valid`, undefined, place);
  let field = issue.path.map(String).join('.');
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    field = issue.keys[0] ?? field;
    message = `unknown ${place === 'query' ? 'query parameter' : 'field'}`;
  }
  if (field === '') field = place;
  return new ApiError(400, 'bad_request', `${place} ${field}: ${message}`, field, place);
}
