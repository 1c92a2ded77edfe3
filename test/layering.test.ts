/**
 * The library's import graph points one way: tools/ and bench/ use lib/, never the reverse, and lib/ needs no
 * package but node-gyp-build and Node's own modules. The command line's packages (commander, cli-progress,
 * cli-table3) are dependencies too, so that `npm i -g iomux` gives a working `iomux`, but only tools/ and bench/
 * may use them. Every lib/**.ts file is read by TypeScript's own import scanner (import, export ... from,
 * import(), require()).
 */
import * as assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

const root = path.resolve(__dirname, '..', '..');
const libDir = path.join(root, 'lib');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Every module specifier a file names, with its line. */
export function specifiersOf(file: string): { specifier: string; line: number }[] {
  const text = fs.readFileSync(file, 'utf8');
  const info = ts.preProcessFile(text, true, true);
  return info.importedFiles.map((ref) => ({
    specifier: ref.fileName,
    line: text.slice(0, ref.pos).split('\n').length,
  }));
}

/** The packages lib/ may import: the dependencies that are the library's, not the command line's. */
export const LIBRARY_DEPENDENCIES: readonly string[] = ['node-gyp-build'];

/** Why `specifier`, named in `file` under lib/, breaks the layering; null if it is fine. */
export function layeringProblem(file: string, specifier: string, runtimeDependencies: readonly string[]): string | null {
  if (specifier.startsWith('.')) {
    const target = path.resolve(path.dirname(file), specifier);
    const relative = path.relative(libDir, target);
    if (relative.startsWith('..') || path.isAbsolute(relative)) {
      return `reaches out of lib/ to ${path.relative(root, target)}`;
    }
    return null;
  }
  const name = specifier.startsWith('node:') ? specifier.slice(5) : specifier;
  if (builtinModules.includes(name) || builtinModules.includes(name.split('/')[0])) return null;
  const packageName = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
  if (runtimeDependencies.includes(packageName)) return null;
  return `needs ${packageName}, which is not one of the library's dependencies`;
}

describe('layering: lib/ imports nothing from tools/, bench/ or the tools\' packages', () => {
  const packageJson = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const runtimeDependencies = LIBRARY_DEPENDENCIES;
  const files = sourceFiles(libDir);

  it('the library\'s dependencies are dependencies of the package', () => {
    for (const name of LIBRARY_DEPENDENCIES) assert.ok(packageJson.dependencies?.[name], `${name} is not in package.json's dependencies`);
  });

  it('finds the library\'s sources and their imports', () => {
    assert.ok(files.length > 30, `only ${files.length} files under lib/`);
    const all = files.flatMap(specifiersOf);
    // The scanner sees each import style the library uses, so an empty answer cannot pass as "no problem".
    assert.ok(all.some((s) => s.specifier === 'node-gyp-build'), 'require(\'node-gyp-build\') in lib/native.ts not seen');
    assert.ok(all.some((s) => s.specifier === '../native'), 'no relative import seen');
  });

  it('every import of every lib/ file stays inside lib/ or names a library dependency or a Node module', () => {
    const problems = files.flatMap((file) => specifiersOf(file).flatMap(({ specifier, line }) => {
      const problem = layeringProblem(file, specifier, runtimeDependencies);
      return problem === null ? [] : [`${path.relative(root, file)}:${line}: '${specifier}' ${problem}`];
    }));
    assert.deepEqual(problems, []);
  });

  it('the check itself flags an arrow out of lib/ and a tools-only package', () => {
    const inLib = path.join(libDir, 'echo', 'server.ts');
    assert.match(layeringProblem(inLib, '../../tools/commands/bench', runtimeDependencies) ?? '', /out of lib\/ to tools/);
    assert.match(layeringProblem(inLib, '../../bench/suite', runtimeDependencies) ?? '', /out of lib\/ to bench/);
    assert.match(layeringProblem(inLib, 'commander', runtimeDependencies) ?? '', /commander, which is not one of the library's dependencies/);
    assert.equal(layeringProblem(inLib, '../native', runtimeDependencies), null);
    assert.equal(layeringProblem(inLib, 'node:net', runtimeDependencies), null);
  });
});
