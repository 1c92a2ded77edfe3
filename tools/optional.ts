/**
 * The benchmark's heavy packages are optional peer dependencies: vega and vega-lite (its charts), benchmark
 * (the micro part) and ftp-srv (one row of the FTP part). Installing iomux, its command included, leaves them
 * out. Before a run measures anything, the packages it will need are looked for; a missing one is one line with
 * the command that installs it, written for the way this copy of iomux was installed (globally, through npx,
 * into a project, or a clone), since `npm install X` in the wrong place changes nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type OptionalPackage = 'benchmark' | 'ftp-srv' | 'vega' | 'vega-lite';

/** The package's own root: tools/ compiles to dist/tools/. */
const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

/** The peer range package.json gives a package, e.g. `^5.33.1 || ^6.0.0`. */
function peerRange(name: OptionalPackage): string {
  const manifest = require('../../package.json') as { peerDependencies: Record<string, string> };
  return manifest.peerDependencies[name];
}

/** The majors a peer range admits (`^5.33.1 || ^6.0.0` → [5, 6]); every alternative is a caret range. */
export function majorsOf(range: string): number[] {
  return range.split('||').map((part) => {
    const m = /^\s*\^(\d+)\.\d+\.\d+\s*$/.exec(part);
    if (!m) throw new Error(`peer range "${range}" is not a list of ^X.Y.Z alternatives`);
    return Number(m[1]);
  });
}

/**
 * The folder of package `name` as Node finds a bare name from `from` (the node_modules folders of it and
 * its parents), without loading it: vega 6 is an ES module graph with top-level await, which require()
 * refuses, and it exports no ./package.json to resolve instead.
 */
export function packageDir(name: string, from: string = __dirname): string | null {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (path.basename(dir) !== 'node_modules' && fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) return null;
  }
}

/** What is wrong with `name` here: null when a version of a supported major resolves. */
function packageProblem(name: OptionalPackage, from: string = __dirname): string | null {
  const dir = packageDir(name, from);
  if (dir === null) return 'missing';
  const { version } = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string };
  const majors = majorsOf(peerRange(name));
  return majors.includes(Number(version.split('.')[0])) ? null : `${version} is installed; it needs ${majors.join(' or ')}`;
}

/** How this copy of iomux was installed, which decides the command that adds a package beside it. */
export type Installation =
  | { kind: 'global' }
  | { kind: 'npx' }
  | { kind: 'project'; dir: string }
  | { kind: 'clone' };

/**
 * Read from where the package lies: `PREFIX/lib/node_modules/iomux` beside `PREFIX/bin/iomux` is a global
 * install (on Windows `PREFIX/node_modules/iomux` beside `PREFIX/iomux.cmd`); npx keeps its installs in
 * `_npx/<hash>/node_modules`; any other `node_modules` belongs to the project that holds the first one in the
 * path (pnpm nests its store inside it); a folder outside `node_modules` is a clone.
 */
export function installationOf(packageRoot: string, exists: (file: string) => boolean = fs.existsSync,
  platform: NodeJS.Platform = process.platform): Installation {
  const parts = path.resolve(packageRoot).split(path.sep);
  const first = parts.indexOf('node_modules');
  if (first < 0) return { kind: 'clone' };
  if (parts.includes('_npx')) return { kind: 'npx' };
  const nodeModules = parts.slice(0, first + 1).join(path.sep);
  const above = path.dirname(nodeModules);
  const bin = platform === 'win32' ? path.join(above, 'iomux.cmd') : path.join(path.dirname(above), 'bin', 'iomux');
  const globalLayout = platform === 'win32' || path.basename(above) === 'lib';
  if (first === parts.length - 2 && globalLayout && exists(bin)) return { kind: 'global' };
  return { kind: 'project', dir: above || path.sep };
}

/** `name@major` for the newest major the peer range admits: what the command installs. */
function installSpec(name: OptionalPackage): string {
  return `${name}@${Math.max(...majorsOf(peerRange(name)))}`;
}

function quoted(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The command that makes `names` resolve for this installation. `args`: the iomux arguments npx repeats. */
export function installCommand(installation: Installation, names: readonly OptionalPackage[], args: readonly string[],
  cwd: string = process.cwd()): string {
  const specs = names.map(installSpec);
  switch (installation.kind) {
    case 'global':
      return `npm install -g ${specs.join(' ')}`;
    case 'npx':
      return ['npx', '-y', '-p', 'iomux', ...specs.flatMap((s) => ['-p', s]), 'iomux', ...args].map(quoted).join(' ');
    case 'project':
      return path.resolve(installation.dir) === path.resolve(cwd)
        ? `npm install ${specs.join(' ')}`
        : `npm install --prefix ${quoted(installation.dir)} ${specs.join(' ')}`;
    case 'clone':
      // They are devDependencies: a clone's plain install has them.
      return 'npm install';
  }
}

/** The one line: `iomux bench needs vega and vega-lite: npm install -g vega@6 vega-lite@6 (or --no-charts)`. */
export function missingMessage(what: string, problems: ReadonlyArray<{ name: OptionalPackage; problem: string }>, command: string,
  alternative?: string): string {
  const names = problems.map(({ name, problem }) => (problem === 'missing' ? name : `${name} (${problem})`));
  const list = names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}` : names[0];
  return `${what} needs ${list}: ${command}${alternative ? ` (or ${alternative})` : ''}`;
}

/**
 * Returns when every package in `names` resolves in a supported major; otherwise prints the one line and
 * exits with 1. `alternatives`: per package, the option that does without it (named when every missing
 * package has one).
 */
export function ensurePackages(what: string, names: readonly OptionalPackage[],
  alternatives: Partial<Record<OptionalPackage, string>> = {}): void {
  const problems = names.flatMap((name) => {
    const problem = packageProblem(name);
    return problem === null ? [] : [{ name, problem }];
  });
  if (problems.length === 0) return;
  const command = installCommand(installationOf(PACKAGE_ROOT), problems.map((p) => p.name), process.argv.slice(2));
  const ways = problems.map(({ name }) => alternatives[name]);
  const alternative = ways.every((way) => way !== undefined) ? [...new Set(ways)].join(' ') : undefined;
  process.stderr.write(`${missingMessage(what, problems, command, alternative)}\n`);
  process.exit(1);
}

/**
 * `import()` that stays one: tsc (module commonjs) compiles `import()` into `require()`, which cannot load an
 * ES module graph with top-level await (vega 6). Resolved from this file, as require would be.
 */
const realImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

/** Loads an optional package that may be an ES module (vega 6, vega-lite 6) or CommonJS (vega 5): its namespace. */
export function importPackage<T>(name: OptionalPackage): Promise<T> {
  return realImport(name) as Promise<T>;
}
