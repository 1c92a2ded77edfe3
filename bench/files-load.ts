/**
 * The concurrency load of the file benchmark: N uploads of one source file, under N names, all at
 * once from one process (one reactor, one hashing thread), into one `iomux files serve`. Prints one
 * JSON line: how many were stored with their SHA-256 verified by the server, and the wall time from
 * the first request to the last verdict (hashing the source before each PUT included).
 *
 *   node dist/bench/files-load.js --port P --file FILE --uploads 100
 */
import { FileHasher } from '../lib/files/hasher';
import { putFile } from '../lib/files/client';
import { Reactor } from '../lib/reactor';

function option(name: string): string {
  const at = process.argv.indexOf(name);
  if (at < 0 || at + 1 >= process.argv.length) throw new Error(`${name} is required`);
  return process.argv[at + 1];
}

async function main(): Promise<void> {
  const port = Number(option('--port'));
  const file = option('--file');
  const uploads = Number(option('--uploads'));
  const reactor = new Reactor().attach();
  const hasher = new FileHasher(reactor);
  const started = performance.now();
  const results = await Promise.allSettled(Array.from({ length: uploads }, (_, i) =>
    putFile({ reactor, endpoint: { port }, file, name: `load-${i}.bin`, hasher })));
  const seconds = (performance.now() - started) / 1000;
  await hasher.close();
  reactor.close();
  const verified = results.filter((r) => r.status === 'fulfilled').length;
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
  const bytes = results.reduce((sum, r) => sum + (r.status === 'fulfilled' ? r.value.size : 0), 0);
  process.stdout.write(`${JSON.stringify({ uploads, verified, bytes, seconds, failures: failures.slice(0, 5) })}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`files-load: ${err.message}\n`);
  process.exitCode = 2;
});
