/**
 * The tools' packages are optional: with one missing, the command that needs it says so in one line and
 * exits 1. A staging copy of the package (its compiled dist/, package.json, the addon's build/) has a
 * node_modules of links to this tree's packages minus the hidden ones, so the CLI really cannot resolve
 * them — the situation of someone who ran `npm install iomux` and then `npx iomux bench`.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { commandOf, packagesOf } from '../tools/optional';

const root = path.resolve(__dirname, '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  peerDependencies: Record<string, string>; peerDependenciesMeta: Record<string, { optional: boolean }>; devDependencies: Record<string, string>;
};
/** The ranges the one line names: the tested versions (devDependencies). */
const tested = manifest.devDependencies;

/** A copy of the package whose node_modules lacks `hidden`; returns its root. */
function stage(parent: string, hidden: readonly string[]): string {
  const dir = fs.mkdtempSync(path.join(parent, 'stage-'));
  for (const part of ['lib', 'tools', 'bench']) fs.cpSync(path.join(root, 'dist', part), path.join(dir, 'dist', part), { recursive: true });
  fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  fs.symlinkSync(path.join(root, 'build'), path.join(dir, 'build'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  for (const entry of fs.readdirSync(path.join(root, 'node_modules'))) {
    if (entry.startsWith('.') || hidden.includes(entry)) continue;
    fs.symlinkSync(path.join(root, 'node_modules', entry), path.join(dir, 'node_modules', entry));
  }
  return dir;
}

function iomux(dir: string, ...args: string[]) {
  const env = { ...process.env };
  delete env.NODE_PATH;
  const result = spawnSync(process.execPath, [path.join(dir, 'dist', 'tools', 'cli.js'), ...args], { encoding: 'utf8', env, timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('tools: optional packages, one line when one is missing', function () {
  this.timeout(60_000);
  let parent: string;

  before(() => {
    parent = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-optional-'));
  });
  after(() => fs.rmSync(parent, { recursive: true, force: true }));

  it('knows each command\'s packages; each is an optional peer dependency of any version and a devDependency', () => {
    assert.equal(commandOf(['bench', '--full']), 'bench');
    assert.equal(commandOf(['-h']), undefined);
    assert.deepEqual(packagesOf('bench'), ['commander', 'benchmark', 'cli-progress', 'cli-table3', 'vega', 'vega-lite']);
    assert.deepEqual(packagesOf('serve'), ['commander']);
    for (const name of packagesOf('bench')) {
      // Any version: a narrower optional peer range that a project's own copy misses fails its whole install.
      assert.equal(manifest.peerDependencies[name], '*', `${name}'s peer range`);
      assert.equal(manifest.peerDependenciesMeta[name]?.optional, true, `${name} is not optional`);
      assert.match(manifest.devDependencies[name] ?? '', /^\^\d/, `${name} is not a devDependency`);
    }
  });

  it('iomux bench without vega-lite: one line naming it and the install command, exit 1', () => {
    const dir = stage(parent, ['vega-lite']);
    const { status, stdout, stderr } = iomux(dir, 'bench', '--no-progress');
    assert.equal(status, 1);
    assert.equal(stdout, '');
    assert.equal(stderr, `iomux bench needs vega-lite: npm install vega-lite@${tested['vega-lite']}\n`);
    // The other commands do not need it.
    const trace = iomux(dir, 'trace', '--list');
    assert.equal(trace.status, 0, trace.stderr);
    assert.match(trace.stdout, /partial-read/);
  });

  it('iomux files without cli-progress, and every command without commander', () => {
    const dir = stage(parent, ['cli-progress', 'commander']);
    const files = iomux(dir, 'files', 'get', 'x');
    assert.equal(files.status, 1);
    assert.equal(files.stderr, `iomux files needs commander, cli-progress: npm install commander@${tested.commander} cli-progress@${tested['cli-progress']}\n`);
    for (const args of [['--help'], ['serve', '--port', '0']]) {
      const r = iomux(dir, ...args);
      assert.equal(r.status, 1);
      assert.equal(r.stderr, `iomux needs commander: npm install commander@${tested.commander}\n`);
    }
  });
});
