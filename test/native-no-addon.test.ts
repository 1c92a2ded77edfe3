/**
 * When no addon loads, require('iomux') says so in one line with the command that fixes it, rather than
 * node-gyp-build's "No native build was found for platform=... abi=... uv=..." or the dynamic loader's words.
 * Staged copies of the package (its compiled library and package.json, with node-gyp-build beside it) have
 * no build/ and either no prebuild or one that cannot load.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

function stage(parent: string): string {
  const dir = fs.mkdtempSync(path.join(parent, 'stage-'));
  fs.cpSync(path.join(root, 'dist', 'lib'), path.join(dir, 'dist', 'lib'), { recursive: true });
  fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(path.join(root, 'node_modules', 'node-gyp-build'), path.join(dir, 'node_modules', 'node-gyp-build'));
  return dir;
}

/** require()s the staged library in a child; its error's message, code and whether it has a cause. */
function requireIn(dir: string) {
  const script = `try { require(${JSON.stringify(path.join(dir, 'dist', 'lib', 'index.js'))}); console.log('loaded'); }
    catch (err) { console.log(JSON.stringify({ message: err.message, code: err.code, cause: err.cause instanceof Error })); }`;
  const env = { ...process.env };
  delete env.IOMUX_ADDON_PATH;
  const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env, timeout: 30_000 });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as { message: string; code: string; cause: boolean };
}

describe('require(\'iomux\') without an addon that loads: one line and the fix', function () {
  this.timeout(30_000);
  let parent: string;
  const platform = `${process.platform}-${process.arch}`;

  before(() => {
    parent = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-no-addon-'));
  });
  after(() => fs.rmSync(parent, { recursive: true, force: true }));

  it('none prebuilt for this platform and none built: names the platform and `npm rebuild iomux`', () => {
    const error = requireIn(stage(parent));
    assert.equal(error.code, 'ERR_IOMUX_NO_ADDON');
    assert.ok(error.cause, 'the loader\'s own error is not kept as the cause');
    assert.equal(error.message, `iomux: no addon for ${platform} was prebuilt or built here: `
      + 'npm rebuild iomux builds one here (it needs python3, make and a C++ compiler)');
  });

  it('a prebuild that does not load here (not a shared object of this system): names the file and the loader\'s reason', () => {
    const dir = stage(parent);
    const file = path.join('prebuilds', platform, 'iomux.napi.uv1.glibc.node');
    fs.mkdirSync(path.join(dir, path.dirname(file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), 'not an ELF file');
    const error = requireIn(dir);
    assert.equal(error.code, 'ERR_IOMUX_NO_ADDON');
    assert.match(error.message, new RegExp(`^iomux: the addon ${file.replace(/[.\\\\]/g, '\\$&')} does not load here \\(.+\\): npm rebuild iomux builds one here`));
    assert.doesNotMatch(error.message, /\n/);
  });
});
