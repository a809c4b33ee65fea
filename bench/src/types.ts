/** One measured figure. `baseline` is a reference measured in the same run, on the same machine. */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  higherIsBetter: boolean;
  baseline: { name: string; value: number } | null;
  /** The figure the issue asks for, e.g. ">= 2.5x baseline" or "< 1 ms"; shown in the table. */
  target?: string;
  /** Whether the value meets `target`; omitted when there is no target. */
  met?: boolean;
}

export interface BenchContext {
  /** Progress line to stderr; the table and JSON are the real output. */
  log(message: string): void;
  /** Shorter runs (used by the test that proves every suite still works). */
  quick: boolean;
}

export interface BenchSuite {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<BenchResult[]>;
}
