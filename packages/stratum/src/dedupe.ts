/** What {@link ShareDedupe.add} found. */
export type DedupeOutcome = 'added' | 'duplicate' | 'full';

/**
 * The shares already credited on one job, keyed on (extranonce1, extranonce2, ntime, nonce,
 * version) in binary form. One set per job, dropped with the job, so memory follows the jobs
 * the book still holds. When full it refuses instead of forgetting: forgetting would let a
 * duplicate through.
 */
export class ShareDedupe {
  #seen = new Set<string>();
  /** Told of every key added (a stratum server handing its sessions to another; see `JobBook.watchAccepted`). */
  onAdded: ((key: string) => void) | null = null;

  /** @param maxEntries most shares remembered for the job */
  constructor(readonly maxEntries: number) {}

  get size(): number {
    return this.#seen.size;
  }

  has(key: string): boolean {
    return this.#seen.has(key);
  }

  add(key: string): DedupeOutcome {
    if (this.#seen.has(key)) return 'duplicate';
    if (this.#seen.size >= this.maxEntries) return 'full';
    this.#seen.add(key);
    this.onAdded?.(key);
    return 'added';
  }

  keys(): IterableIterator<string> {
    return this.#seen.values();
  }

  clear(): void {
    this.#seen.clear();
  }
}
