import { ApiError } from './errors.js';

/**
 * Cursors are opaque to clients: base64url of the sort key of the last item a page held. The
 * next page starts strictly after that key, so items added or removed meanwhile never shift
 * a page (stable), whatever the position they sort to.
 */
export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** The key of a cursor, checked to be `shape` (one `typeof` per element); a 400 naming `cursor` otherwise. */
export function decodeCursor(
  cursor: string | undefined,
  shape: readonly ('string' | 'number')[],
): (string | number)[] | null {
  if (cursor === undefined) return null;
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    key = undefined;
  }
  if (
    !Array.isArray(key) ||
    key.length !== shape.length ||
    key.some((v, i) =>
      shape[i] === 'number' ? typeof v !== 'number' || !Number.isFinite(v) : typeof v !== 'string',
    )
  ) {
    throw new ApiError(
      400,
      'bad_request',
      'query cursor: not a cursor this list gave (use `next` of the previous page)',
      'cursor',
      'query',
    );
  }
  return key as (string | number)[];
}
