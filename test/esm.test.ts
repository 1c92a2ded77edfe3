/**
 * Both import styles: every subpath of the exports map sends `import` to a generated ES module
 * (dist/esm/, scripts/esm.js) and `require` to the CommonJS build, and the two give the same names and
 * the very same objects. An ES module consumer runs in a child Node (the package imports itself by name);
 * `npm run test:package` does the same against the packed tarball.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
type Target = string | { import: { types: string; default: string }; require: { types: string; default: string } };
const exportsMap = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { exports: Record<string, Target> }).exports;
const subpaths = Object.keys(exportsMap).filter((s) => s !== './package.json');
const specifier = (subpath: string) => (subpath === '.' ? 'iomux' : `iomux/${subpath.slice(2)}`);

/** For each subpath: the ES module's names (without default), whether each is the CommonJS export itself. */
function esmView(): Record<string, { names: string[]; sameObjects: boolean; defaultIsCjs: boolean }> {
  const code = `
    import { createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    const out = {};
    for (const spec of ${JSON.stringify(subpaths.map(specifier))}) {
      const esm = await import(spec);
      const cjs = require(spec);
      const names = Object.keys(esm).filter((k) => k !== 'default').sort();
      out[spec] = { names, sameObjects: names.every((k) => esm[k] === cjs[k]), defaultIsCjs: esm.default === cjs };
    }
    process.stdout.write(JSON.stringify(out));`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as ReturnType<typeof esmView>;
}

describe('ES modules and CommonJS: the same names from every subpath', () => {
  it('every subpath has an import condition (dist/esm/*.mjs and .d.mts) and a require condition', () => {
    assert.ok(subpaths.length >= 9);
    for (const subpath of subpaths) {
      const target = exportsMap[subpath];
      assert.ok(typeof target === 'object', subpath);
      assert.match(target.import.default, /^\.\/dist\/esm\/[\w-]+\.mjs$/);
      assert.match(target.import.types, /^\.\/dist\/esm\/[\w-]+\.d\.mts$/);
      assert.match(target.require.default, /^\.\/dist\/lib\/.+\.js$/);
      for (const file of [target.import.default, target.import.types, target.require.default, target.require.types]) {
        assert.ok(fs.existsSync(path.join(root, file)), `${subpath}: ${file} is missing`);
      }
    }
  });

  it('import gives exactly require\'s names, the same objects, and the CommonJS module as default', () => {
    const view = esmView();
    for (const subpath of subpaths) {
      const spec = specifier(subpath);
      const cjsNames = Object.keys(require(path.join(root, (exportsMap[subpath] as Exclude<Target, string>).require.default)) as object)
        .filter((k) => k !== '__esModule').sort();
      assert.deepEqual(view[spec].names, cjsNames, spec);
      assert.equal(view[spec].sameObjects, true, spec);
      assert.equal(view[spec].defaultIsCjs, true, spec);
    }
    for (const name of ['Reactor', 'EchoServer', 'DefaultSelector', 'binding', 'constants']) assert.ok(view.iomux.names.includes(name), name);
  });
});
