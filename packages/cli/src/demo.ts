/**
 * `hashwire demo`. The services (jobmanager, stratum, reporter) are later issues; until
 * they exist this says so plainly instead of pretending.
 */
export async function demoCommand(_argv: string[]): Promise<number> {
  process.stderr.write('hashwire demo: not available yet\n');
  return 1;
}
