import { readFileSync } from 'node:fs';

/** A service could not start: its message is printed as one line and the process exits 1. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

export interface ReadJsonConfigOptions {
  /** Environment variable holding the JSON when no file is given, e.g. `HASHWIRE_STRATUM_CONFIG`. */
  envVar: string;
  /** A file path (the bin's first argument), taking precedence over the variable. */
  file?: string;
  /** Fields that must be non-empty strings. */
  requiredText?: readonly string[];
}

/**
 * A service's JSON config from a file or an environment variable, checked to be a JSON object
 * with the required text fields; every problem is a StartupError naming the field.
 * (The operations issue brings the pool-wide config file; the bins read this until then.)
 */
export function readJsonConfig(options: ReadJsonConfigOptions): Record<string, unknown> {
  let text: string | undefined;
  if (options.file) {
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (error) {
      throw new StartupError(
        `cannot read config file ${options.file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
  } else {
    text = process.env[options.envVar];
  }
  if (!text) throw new StartupError(`give a JSON config file or ${options.envVar}`);
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new StartupError(`config is not JSON: ${(error as Error).message}`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new StartupError('config must be a JSON object');
  }
  const record = config as Record<string, unknown>;
  for (const field of options.requiredText ?? []) {
    if (typeof record[field] !== 'string' || record[field] === '') {
      throw new StartupError(`${field} must be a non-empty string`);
    }
  }
  return record;
}
