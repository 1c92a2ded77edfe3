/** Help texts name docs by their path on this machine: docs/ ships in the package, beside dist/. */
import * as path from 'node:path';

export function docPath(name: string): string {
  const file = path.resolve(__dirname, '..', '..', 'docs', name);
  const relative = path.relative(process.cwd(), file);
  // From a clone's root `docs/x.md` reads better than an absolute path.
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}
