import { type MockInstance, vi } from 'vitest';

/** What the process wrote while captured. A test may reset either field with `''`. */
export interface CapturedOutput {
  /** Everything written to stdout. */
  out: string;
  /** Everything written to stderr; stays empty when stderr is not captured. */
  err: string;
  /** Puts the real writes back (`vi.restoreAllMocks()` does too). */
  restore(): void;
}

export interface CaptureOutputOptions {
  /**
   * Capture stderr too; when false, stderr is written through as usual.
   * @defaultValue true
   */
  stderr?: boolean;
  /** Called after every captured write, e.g. to wait for a line. */
  onWrite?: () => void;
}

/** Captures `process.stdout.write` (and `process.stderr.write`) instead of printing. */
export function captureOutput(options: CaptureOutputOptions = {}): CapturedOutput {
  const spies: MockInstance[] = [];
  const captured: CapturedOutput = {
    out: '',
    err: '',
    restore() {
      for (const spy of spies) spy.mockRestore();
    },
  };
  const capture = (stream: NodeJS.WriteStream, field: 'out' | 'err') =>
    vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      captured[field] += String(chunk);
      options.onWrite?.();
      return true;
    });
  spies.push(capture(process.stdout, 'out'));
  if (options.stderr !== false) spies.push(capture(process.stderr, 'err'));
  return captured;
}
