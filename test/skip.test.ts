/**
 * The project's rule for skips, kept by a test: every skip in the suites goes through test/skip.ts
 * (skipUnless with its reason, or linuxFeature), never a bare this.skip() that could hide a failure.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const testDir = path.resolve(__dirname, '..', '..', 'test');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(file);
    return entry.name.endsWith('.ts') ? [file] : [];
  });
}

describe('the rule for skipped tests', () => {
  it('no test calls skip() itself: only test/skip.ts does, with a reason', () => {
    const bare = sources(testDir)
      .filter((file) => path.basename(file) !== 'skip.ts' && path.basename(file) !== 'skip.test.ts')
      .flatMap((file) => fs.readFileSync(file, 'utf8').split('\n')
        .map((line, i) => ({ where: `${path.relative(testDir, file)}:${i + 1}`, line }))
        .filter(({ line }) => /\b(this|ctx)\.skip\(\)|\b(it|describe)\.skip\(/.test(line)));
    assert.deepEqual(bare.map(({ where, line }) => `${where}: ${line.trim()}`), []);
  });
});
