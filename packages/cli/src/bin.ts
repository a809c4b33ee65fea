#!/usr/bin/env node
import { UsageError, main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const usageError =
      error instanceof UsageError || (error instanceof Error && error.name.endsWith('UsageError'));
    if (
      usageError ||
      (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      process.stderr.write(`hashwire: ${(error as Error).message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(
      `hashwire: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
