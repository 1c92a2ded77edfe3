/**
 * The command line's own packages (commander, cli-progress, cli-table3) are dependencies; the benchmark's heavy
 * ones (vega, vega-lite, benchmark, ftp-srv) are optional peers. With one missing, the run that needs it says so in
 * one line, with the install command for the way iomux was installed, and exits 1 before measuring anything.
 * Staged copies of the package (its compiled dist/, package.json, the addon's build/) lie in a project's or a
 * global prefix's node_modules, beside links to this tree's packages minus the hidden ones, so the CLI really
 * cannot resolve them — the situation of someone who ran `npm install -g iomux` and then `iomux bench`.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { commandOf, invokedCommand } from '../tools/cli';
import { installationOf, installCommand, majorsOf, missingMessage, packageDir } from '../tools/optional';

const root = path.resolve(__dirname, '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>; peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional: boolean }>; devDependencies: Record<string, string>;
};
const OPTIONAL = ['benchmark', 'ftp-srv', 'vega', 'vega-lite'];

/** A copy of the package at `where` (…/node_modules/iomux) whose sibling packages lack `hidden`; returns its root. */
function stage(where: string, hidden: readonly string[]): string {
  const dir = path.join(where, 'iomux');
  for (const part of ['lib', 'tools', 'bench']) fs.cpSync(path.join(root, 'dist', part), path.join(dir, 'dist', part), { recursive: true });
  fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  fs.symlinkSync(path.join(root, 'build'), path.join(dir, 'build'));
  for (const entry of fs.readdirSync(path.join(root, 'node_modules'))) {
    if (entry.startsWith('.') || hidden.includes(entry)) continue;
    fs.symlinkSync(path.join(root, 'node_modules', entry), path.join(where, entry));
  }
  return dir;
}

function iomux(dir: string, cwd: string, ...args: string[]) {
  const env = { ...process.env };
  delete env.NODE_PATH;
  const result = spawnSync(process.execPath, [path.join(dir, 'dist', 'tools', 'cli.js'), ...args], { cwd, encoding: 'utf8', env, timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('tools: the CLI\'s packages are dependencies; the benchmark\'s heavy ones optional, one line when missing', function () {
  this.timeout(60_000);
  let parent: string;

  before(() => {
    parent = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-optional-'));
  });
  after(() => fs.rmSync(parent, { recursive: true, force: true }));

  it('commander, cli-progress and cli-table3 are dependencies; the heavy four optional peers whose ranges name majors', () => {
    for (const name of ['commander', 'cli-progress', 'cli-table3']) {
      assert.match(manifest.dependencies[name] ?? '', /^\^\d/, `${name} is not a dependency`);
      assert.equal(manifest.peerDependencies[name], undefined);
    }
    for (const name of OPTIONAL) {
      assert.equal(manifest.peerDependenciesMeta[name]?.optional, true, `${name} is not an optional peer`);
      assert.ok(majorsOf(manifest.peerDependencies[name]).length >= 1);
      // The tested version (devDependencies) is one the peer range admits.
      const tested = Number(/\d+/.exec(manifest.devDependencies[name])![0]);
      assert.ok(majorsOf(manifest.peerDependencies[name]).includes(tested), `${name}: ${manifest.devDependencies[name]} is outside its peer range`);
    }
    assert.deepEqual(majorsOf('^5.0.0 || ^6.0.0'), [5, 6]);
    assert.throws(() => majorsOf('*'), /not a list of \^X\.Y\.Z/);
  });

  it('finds the invoked command, also behind `help`', () => {
    assert.equal(commandOf(['bench', '--full']), 'bench');
    assert.equal(commandOf(['-h']), undefined);
    assert.equal(invokedCommand(['help', 'bench']), 'bench');
    assert.equal(invokedCommand(['--version']), undefined);
  });

  it('loads only the command that runs', () => {
    const cli = path.join(root, 'dist', 'tools', 'cli.js');
    const script = `require(${JSON.stringify(cli)}).main([process.argv0, 'iomux', 'trace', '--list'])
      .then(() => process.stderr.write(JSON.stringify(Object.keys(require.cache))))`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const loaded = (JSON.parse(r.stderr) as string[]).map((file) => path.relative(path.join(root, 'dist'), file));
    assert.ok(loaded.includes(path.join('tools', 'commands', 'trace.js')), 'trace.js was not loaded');
    const others = loaded.filter((file) => /^tools[\\/]commands[\\/](?!trace)|^bench[\\/]/.test(file));
    assert.deepEqual(others, []);
  });

  it('tells a global install, npx, a project (npm or pnpm) and a clone apart, and names the command for each', () => {
    const bin = (...files: string[]) => (file: string) => files.includes(file);
    assert.deepEqual(installationOf('/usr/local/lib/node_modules/iomux', bin('/usr/local/bin/iomux'), 'linux'), { kind: 'global' });
    // Without the bin link it is a project that happens to be called lib.
    assert.deepEqual(installationOf('/srv/lib/node_modules/iomux', bin(), 'linux'), { kind: 'project', dir: '/srv/lib' });
    assert.deepEqual(installationOf('/home/u/.npm/_npx/0123abcd/node_modules/iomux', bin(), 'linux'), { kind: 'npx' });
    assert.deepEqual(installationOf('/home/u/app/node_modules/iomux', bin(), 'linux'), { kind: 'project', dir: '/home/u/app' });
    assert.deepEqual(installationOf('/home/u/app/node_modules/.pnpm/iomux@0.1.0/node_modules/iomux', bin(), 'linux'),
      { kind: 'project', dir: '/home/u/app' });
    assert.deepEqual(installationOf('/home/u/src/iomux', bin(), 'linux'), { kind: 'clone' });

    assert.equal(installCommand({ kind: 'global' }, ['vega', 'vega-lite'], ['bench']), 'npm install -g vega@6 vega-lite@6');
    assert.equal(installCommand({ kind: 'npx' }, ['benchmark'], ['bench', '--only', 'micro']),
      'npx -y -p iomux -p benchmark@2 iomux bench --only micro');
    assert.equal(installCommand({ kind: 'project', dir: '/home/u/app' }, ['vega'], [], '/home/u/app'), 'npm install vega@6');
    assert.equal(installCommand({ kind: 'project', dir: '/home/u/my app' }, ['vega'], [], '/tmp'), 'npm install --prefix \'/home/u/my app\' vega@6');
    assert.equal(installCommand({ kind: 'clone' }, ['vega'], []), 'npm install');
    assert.equal(missingMessage('iomux bench', [{ name: 'vega', problem: 'missing' }, { name: 'vega-lite', problem: '4.17.0 is installed; it needs 5 or 6' }],
      'npm install vega@6 vega-lite@6', '--no-charts'),
    'iomux bench needs vega and vega-lite (4.17.0 is installed; it needs 5 or 6): npm install vega@6 vega-lite@6 (or --no-charts)');
  });

  it('a global install without the chart packages: `npm install -g`, exit 1, nothing measured; --no-charts and every --help need none', () => {
    const prefix = path.join(parent, 'prefix');
    const where = path.join(prefix, 'lib', 'node_modules');
    fs.mkdirSync(where, { recursive: true });
    const dir = stage(where, OPTIONAL);
    fs.mkdirSync(path.join(prefix, 'bin'));
    fs.symlinkSync(path.join(dir, 'dist', 'tools', 'cli.js'), path.join(prefix, 'bin', 'iomux'));
    assert.equal(packageDir('vega', path.join(dir, 'dist', 'tools')), null);

    const bench = iomux(dir, parent, 'bench', '--only', 'scaling', '--no-progress');
    assert.equal(bench.status, 1);
    assert.equal(bench.stdout, '');
    assert.equal(bench.stderr, 'iomux bench needs vega and vega-lite: npm install -g vega@6 vega-lite@6 (or --no-charts)\n');

    const micro = iomux(dir, parent, 'bench', '--only', 'micro,ftp', '--no-charts');
    assert.equal(micro.status, 1);
    assert.equal(micro.stderr, 'iomux bench needs benchmark and ftp-srv: npm install -g benchmark@2 ftp-srv@4\n');
    // --compare needs none of them: it gets past the check (here to the file that is not there).
    const compare = iomux(dir, parent, 'bench', '--compare', path.join(parent, 'a.json'), path.join(parent, 'b.json'));
    assert.equal(compare.status, 1);
    assert.match(compare.stderr, /^iomux: ENOENT: no such file or directory, open '.*a\.json'/);

    for (const args of [['--help'], ['help', 'bench'], ...['serve', 'client', 'bench', 'trace', 'files', 'ftp'].map((c) => [c, '--help']),
      ['files', 'put', '--help'], ['ftp', 'user', 'add', '--help']]) {
      const r = iomux(dir, parent, ...args);
      assert.equal(r.status, 0, `iomux ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /^Usage: iomux/, `iomux ${args.join(' ')}`);
    }
    const top = iomux(dir, parent, '--help').stdout;
    for (const name of ['serve', 'client', 'bench', 'trace', 'files', 'ftp']) assert.match(top, new RegExp(`^  ${name}\\b`, 'm'));
    const trace = iomux(dir, parent, 'trace', '--list');
    assert.equal(trace.status, 0, trace.stderr);
    assert.match(trace.stdout, /partial-read/);
  });

  it('a project with vega-lite of an unsupported major: the line says which it found, with a plain `npm install`', () => {
    const project = path.join(parent, 'app');
    const where = path.join(project, 'node_modules');
    fs.mkdirSync(where, { recursive: true });
    const dir = stage(where, ['vega-lite']);
    fs.mkdirSync(path.join(where, 'vega-lite'));
    fs.writeFileSync(path.join(where, 'vega-lite', 'package.json'), '{ "name": "vega-lite", "version": "4.17.0" }\n');
    const r = iomux(dir, project, 'bench', '--only', 'scaling');
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'iomux bench needs vega-lite (4.17.0 is installed; it needs 5 or 6): npm install vega-lite@6 (or --no-charts)\n');
    const elsewhere = iomux(dir, parent, 'bench', '--only', 'scaling');
    assert.match(elsewhere.stderr, new RegExp(`: npm install --prefix ${project.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} vega-lite@6 `));
  });
});
