import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The built bin (run `pnpm build` first, as for the other services' process tests). */
export const API_BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

export interface ApiProcess {
  readonly child: ChildProcess;
  readonly ready: { ready: true; id: string; url: string };
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  logs(): string;
}

/**
 * Runs the api bin with its JSON config; resolves on its ready line, rejects with what it
 * printed if it exits first.
 */
export async function spawnApi(config: Record<string, unknown>): Promise<ApiProcess> {
  const child = spawn(process.execPath, [API_BIN], {
    env: { ...process.env, HASHWIRE_API_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    tail.push(line);
    if (tail.length > 100) tail.shift();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  const lines = createInterface({ input: child.stdout! });
  const first = await Promise.race([
    new Promise<string>((resolve) => lines.once('line', resolve)),
    exited.then((exit) => {
      throw new Error(`api exited (${exit.code ?? exit.signal}) before ready: ${tail.join('\n')}`);
    }),
  ]);
  return { child, ready: JSON.parse(first), exited, logs: () => tail.join('\n') };
}

/** A fetch answer with its JSON body (null when none). */
// biome-ignore lint/suspicious/noExplicitAny: the tests' assertions check the JSON they read
type Json = any;

export async function call(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; headers: Headers; body: Json }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown = null;
  if (text !== '') body = JSON.parse(text);
  return { status: res.status, headers: res.headers, body };
}
