/**
 * The examples that README.md and docs/streams.md name ship in the package and run from it: the
 * packed file list (npm pack --dry-run) holds each one's compiled JavaScript and everything it
 * requires, and the chat server runs from a directory laid out exactly as that list (plus the addon
 * that a prebuild stands for in a real tarball), serving a real client.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startChild } from './helpers';

const root = path.resolve(__dirname, '..', '..');

/** Every `examples/NAME.ts` the two documents link to. */
function namedExamples(): string[] {
  const names = new Set<string>();
  for (const doc of ['README.md', 'docs/streams.md']) {
    for (const m of fs.readFileSync(path.join(root, doc), 'utf8').matchAll(/examples\/([\w-]+)\.ts/g)) names.add(m[1]);
  }
  return [...names].sort();
}

describe('examples in the package', function () {
  this.timeout(60000);
  let packed: Set<string>;

  before(() => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    packed = new Set((JSON.parse(out) as { files: { path: string }[] }[])[0].files.map((f) => f.path));
  });

  it('every example README.md and docs/streams.md name is packed, compiled, with what it requires', () => {
    const names = namedExamples();
    assert.ok(names.includes('chat-server') && names.includes('http-static'), names.join(', '));
    for (const name of names) {
      const file = `dist/examples/${name}.js`;
      assert.ok(packed.has(file), `${file} is not in the package`);
      const source = fs.readFileSync(path.join(root, file), 'utf8');
      for (const m of source.matchAll(/require\("(\.[^"]+)"\)/g)) {
        const target = path.posix.join('dist/examples', m[1]);
        assert.ok(packed.has(`${target}.js`) || packed.has(`${target}/index.js`), `${file} requires ${m[1]}, which is not packed`);
      }
    }
  });

  it('the chat server runs from the packed layout and serves a client', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-packed-'));
    try {
      for (const file of packed) {
        fs.mkdirSync(path.join(dir, path.dirname(file)), { recursive: true });
        fs.copyFileSync(path.join(root, file), path.join(dir, file));
      }
      // What a prebuild is in a real tarball, and the one runtime dependency.
      fs.mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
      fs.copyFileSync(path.join(root, 'build', 'Release', 'iomux.node'), path.join(dir, 'build', 'Release', 'iomux.node'));
      fs.mkdirSync(path.join(dir, 'node_modules'));
      fs.symlinkSync(path.join(root, 'node_modules', 'node-gyp-build'), path.join(dir, 'node_modules', 'node-gyp-build'));
      const { child, match, exited } = await startChild(process.execPath, [path.join(dir, 'dist', 'examples', 'chat-server.js'), '0'], /chat on [^:]+:(\d+)/);
      try {
        const welcome = await new Promise<string>((resolve, reject) => {
          const socket = net.connect(Number(match[1]), '127.0.0.1');
          socket.once('data', (d: Buffer) => {
            socket.end();
            resolve(d.toString());
          });
          socket.once('error', reject);
        });
        assert.equal(welcome, 'welcome; 0 other(s) here\n');
        child.kill('SIGINT');
        assert.equal(await exited, 0);
      } finally {
        child.kill('SIGKILL');
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
