import fc from 'fast-check';

/**
 * fast-check arbitraries for what a hostile miner puts in stratum params: text with unicode,
 * control characters and whitespace (empty to 200 characters), numbers, nulls, nested arrays
 * and objects — mixed with plausible values (a real username, a job id the server sent, hex of
 * the right size), so the junk gets past the first checks and reaches the deep paths (judging,
 * the spool, the share log).
 */

/** Characters that break logs, keys and line formats. */
const NASTY_CHARS = [
  ' ',
  '\t',
  '\n',
  '\r',
  '\0',
  '\x1b',
  '\x7f',
  '\u0085',
  '\u00a0',
  '\u2028',
  '\u2029',
  '\u200b',
  '\ufeff',
  '|',
  '.',
  ':',
  '{',
  '}',
  '"',
  '\\',
  'é',
  'ß',
  '\u4e2d',
  '😀',
  '\ud800', // a lone surrogate half
];

/** A string of 0–`maxLength` characters, biased toward the ones that break formats. */
export function hostileString(maxLength = 200): fc.Arbitrary<string> {
  const nasty = fc.constantFrom(...NASTY_CHARS);
  return fc.oneof(
    fc.string({ maxLength, unit: 'binary' }),
    fc.string({ maxLength, unit: 'grapheme' }),
    fc.string({ maxLength, unit: fc.oneof(nasty, fc.constantFrom(...'0123456789abcdefABCDEF')) }),
    fc.constantFrom('', ' ', 'a b', ' x', 'x ', '\t', 'null', 'undefined', '0', '-1', 'NaN'),
  );
}

/** Any JSON value a line can carry, biased toward hostile strings and odd numbers. */
export function hostileValue(maxLength = 200): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 4, arbitrary: hostileString(maxLength) },
    {
      weight: 2,
      arbitrary: fc.oneof(
        fc.integer(),
        fc.double({ noNaN: true }),
        fc.constantFrom(0, -0, -1, 1e308, 2 ** 53, Number.MAX_SAFE_INTEGER + 2),
      ),
    },
    { weight: 1, arbitrary: fc.constantFrom(null, true, false) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        fc.array(fc.oneof(hostileString(20), fc.integer(), fc.constant(null)), { maxLength: 4 }),
        fc.jsonValue({ maxDepth: 3 }),
      ),
    },
  );
}

/** Hex of exactly `digits` digits, upper or lower case. */
export function hexOf(digits: number): fc.Arbitrary<string> {
  return fc.string({
    minLength: digits,
    maxLength: digits,
    unit: fc.constantFrom(...'0123456789abcdefABCDEF'),
  });
}

/** What the server told the session, so plausible values can be mixed in. */
export interface SubmitContext {
  /** Usernames the connection authorized. */
  usernames: readonly string[];
  /** Job ids the server sent. */
  jobIds: readonly string[];
  /** From `mining.subscribe`. */
  extranonce2Size: number;
  /** ntime values the jobs allow (random hex is almost never inside the window). */
  ntimes?: readonly string[];
}

/** One `mining.submit` param: plausible or hostile. */
function either<T>(plausible: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 2, arbitrary: plausible }, { weight: 1, arbitrary: hostileValue() });
}

/**
 * `mining.submit` params: usually five or six fields, each either plausible (an authorized
 * username, a job id sent, hex of the right size) or hostile; sometimes the wrong number of
 * fields or no array shape at all inside.
 */
export function hostileSubmitParams(ctx: SubmitContext): fc.Arbitrary<unknown[]> {
  const username = fc.constantFrom(...ctx.usernames);
  const jobId =
    ctx.jobIds.length > 0
      ? fc.oneof(
          fc.constantFrom(...ctx.jobIds),
          // A known id made unknown by one hostile character: "a b", a trailing space…
          fc
            .tuple(fc.constantFrom(...ctx.jobIds), fc.constantFrom(...NASTY_CHARS), fc.nat(8))
            .map(([id, c, at]) => `${id.slice(0, at)}${c}${id.slice(at)}`),
        )
      : hostileString(70);
  const fields = fc.tuple(
    either(username),
    either(jobId),
    either(hexOf(2 * ctx.extranonce2Size)),
    either(ctx.ntimes && ctx.ntimes.length > 0 ? fc.constantFrom(...ctx.ntimes) : hexOf(8)),
    either(hexOf(8)),
  );
  return fc.oneof(
    { weight: 6, arbitrary: fields.map((f) => [...f]) },
    { weight: 2, arbitrary: fc.tuple(fields, either(hexOf(8))).map(([f, v]) => [...f, v]) },
    { weight: 1, arbitrary: fc.array(hostileValue(), { maxLength: 8 }) },
  );
}

/** What authorize variants are built from. */
export interface AuthorizeContext {
  /** Valid payout addresses of the server's chain. */
  addresses: readonly string[];
}

/**
 * `mining.authorize` params: a valid address with a hostile worker name, an address with
 * whitespace around it, in upper or mixed case, 10 KB of text, or any hostile value; and a
 * hostile password.
 */
export function hostileAuthorizeParams(ctx: AuthorizeContext): fc.Arbitrary<unknown[]> {
  const address = fc.constantFrom(...ctx.addresses);
  const username = fc.oneof(
    fc.tuple(address, hostileString(80)).map(([a, w]) => `${a}.${w}`),
    fc
      .tuple(address, fc.constantFrom(' ', '\t', '\n', '\u00a0', '\u200b'), fc.boolean())
      .map(([a, space, before]) => (before ? `${space}${a}` : `${a}${space}`)),
    address.map((a) => a.toUpperCase()),
    fc.mixedCase(address),
    fc.tuple(address, fc.constantFrom('x', 'é', '\0', ' ')).map(([a, c]) => `${a}.${c.repeat(10_240)}`),
    hostileValue(),
  );
  return fc.oneof(
    { weight: 4, arbitrary: fc.tuple(username, hostileValue(64)).map((p) => [...p]) },
    { weight: 1, arbitrary: fc.array(hostileValue(), { maxLength: 4 }) },
  );
}
