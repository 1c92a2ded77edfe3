/**
 * The addon this checkout built needs no glibc or libstdc++ newer than the prebuild's floor (RHEL 8 and
 * Debian 10: glibc 2.28, GCC 8's libstdc++). The prebuilds are built the same way, so a new call whose
 * default symbol version is newer (dlsym moved to GLIBC_2.34) is caught here, in `npm test`, and not
 * only when `npm run test:package` packs the tarball. scripts/glibc-floor.js reads readelf -V.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { skipUnless } from './skip';

const root = path.resolve(__dirname, '..', '..');

describe('the built addon stays under the glibc floor of the prebuilds', () => {
  it('scripts/glibc-floor.js passes build/Release/iomux.node, and fails a binary that needs GLIBC_2.34', function () {
    this.timeout(30000);
    const report = process.report.getReport() as { header?: { glibcVersionRuntime?: string } };
    skipUnless(this, process.platform === 'linux' && report.header?.glibcVersionRuntime !== undefined, 'the floor is of glibc symbol versions in ELF files');
    const addon = path.join(root, 'build', 'Release', 'iomux.node');
    assert.ok(fs.existsSync(addon), `${addon}: npm install builds it`);
    const floor = path.join(root, 'scripts', 'glibc-floor.js');
    const ours = spawnSync(process.execPath, [floor, addon], { encoding: 'utf8' });
    assert.equal(ours.status, 0, ours.stdout + ours.stderr);
    assert.match(ours.stdout, /GLIBC_2\.\d+/);
    // And the checker can fail: a library that calls dlsym, built here, takes dlsym's default version,
    // GLIBC_2.34 on a glibc that new (what native/tls.cc did before it took weak references).
    const glibc = report.header!.glibcVersionRuntime!.split('.').map(Number);
    if (glibc[0] === 2 && glibc[1] < 34) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-floor-'));
    try {
      fs.writeFileSync(path.join(dir, 'probe.c'), '#include <dlfcn.h>\nvoid* probe(void) { return dlsym(RTLD_DEFAULT, "x"); }\n');
      const built = spawnSync('cc', ['-shared', '-fPIC', '-o', path.join(dir, 'probe.so'), path.join(dir, 'probe.c')], { encoding: 'utf8' });
      assert.equal(built.status, 0, `cc (it built the addon): ${built.stderr}`);
      const probe = spawnSync(process.execPath, [floor, path.join(dir, 'probe.so')], { encoding: 'utf8' });
      assert.equal(probe.status, 1, probe.stdout + probe.stderr);
      assert.match(probe.stderr, /needs GLIBC_2\.34, above the floor GLIBC_2\.28, for dlsym/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
