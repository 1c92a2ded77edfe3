/**
 * What package.json promises a user who installs the tarball: npm's own list of the files it would pack
 * (`npm pack --dry-run`) holds every file README.md and the shipped docs link to, the LICENSE, no source
 * maps or tool typings (their sources do not ship), and TypeScript's node10 resolution finds every subpath.
 * test:package installs the real tarball; this keeps the manifest honest on every `npm test`.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, string | { require: { types: string } }>;
  typesVersions: Record<string, Record<string, string[]>>;
  os: string[]; cpu: string[]; license: string;
  repository: { url: string }; homepage: string; bugs: { url: string };
};

/** The files npm would pack (without running prepack: the prebuilds are test:package's to check). */
function packed(): Set<string> {
  const npm = process.env.npm_execpath;
  const args = ['pack', '--dry-run', '--json', '--ignore-scripts'];
  const out = npm && npm.endsWith('.js')
    ? execFileSync(process.execPath, [npm, ...args], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    : execFileSync('npm', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const [result] = JSON.parse(out) as { files: { path: string }[] }[];
  return new Set(result.files.map((f) => f.path));
}

/** Relative link targets of a Markdown file, as paths from the package root (anchors and URLs left out). */
function relativeLinks(file: string): string[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map(([, target]) => target.split('#')[0])
    .filter((target) => target !== '' && !/^[a-z]+:/i.test(target))
    .map((target) => path.posix.normalize(path.posix.join(path.posix.dirname(file), target)));
}

describe('package.json: what the tarball holds and declares', function () {
  this.timeout(60_000);
  let files: Set<string>;

  before(() => {
    files = packed();
  });

  it('README.md and every shipped doc link only to files the tarball holds', () => {
    const docs = [...files].filter((f) => /^docs\/.*\.md$/.test(f));
    assert.ok(files.has('README.md') && docs.length >= 5, `README.md and docs/ are not packed (${docs.length} docs)`);
    const broken = ['README.md', ...docs].flatMap((doc) => relativeLinks(doc)
      .filter((target) => !files.has(target) && ![...files].some((f) => f.startsWith(`${target.replace(/\/$/, '')}/`)))
      .map((target) => `${doc} -> ${target}`));
    assert.deepEqual(broken, []);
  });

  it('a LICENSE, and no source maps or tool typings, whose sources do not ship', () => {
    assert.ok(files.has('LICENSE'));
    assert.equal(manifest.license, 'MIT');
    assert.match(fs.readFileSync(path.join(root, 'LICENSE'), 'utf8'), /^MIT License/);
    assert.deepEqual([...files].filter((f) => f.endsWith('.map')), []);
    assert.deepEqual([...files].filter((f) => /^dist\/(tools|bench)\/.*\.d\.ts$/.test(f)), []);
    assert.ok(files.has('dist/lib/index.d.ts') && files.has('dist/esm/index.d.mts'), 'the library\'s typings are missing');
    assert.ok(!files.has('lib/index.ts'), 'the TypeScript sources are packed: then ship the maps too');
  });

  it('typesVersions gives node10 resolution every subpath of the exports map, at the same typings', () => {
    const mapped = manifest.typesVersions['*'];
    const subpaths = Object.entries(manifest.exports).filter(([sub, target]) => sub !== '.' && typeof target !== 'string');
    assert.ok(subpaths.length >= 8);
    for (const [sub, target] of subpaths) {
      const types = (target as { require: { types: string } }).require.types.replace(/^\.\//, '');
      assert.deepEqual(mapped[sub.slice(2)], [types], `typesVersions for ${sub}`);
      assert.ok(files.has(types), `${types} is not packed`);
    }
    assert.equal(Object.keys(mapped).length, subpaths.length, 'typesVersions names a subpath the exports map lacks');
  });

  it('os and cpu cover the prebuilds, repository, homepage and bugs point at one project', () => {
    const made = fs.readFileSync(path.join(root, 'scripts', 'prebuilds.sh'), 'utf8');
    for (const target of ['linux-x64', 'linux-arm64', 'win32-x64']) {
      const [os, cpu] = target.split('-');
      assert.match(made, new RegExp(`prebuilds/${target}/`), `prebuilds.sh makes no ${target}`);
      assert.ok(manifest.os.includes(os) && manifest.cpu.includes(cpu), `${target} is not allowed by os/cpu`);
    }
    const repository = /github\.com\/([\w-]+\/[\w-]+?)(\.git)?$/.exec(manifest.repository.url)?.[1];
    assert.ok(repository, manifest.repository.url);
    assert.ok(manifest.homepage.includes(repository) && manifest.bugs.url.includes(repository));
  });
});
