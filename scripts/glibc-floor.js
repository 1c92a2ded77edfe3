#!/usr/bin/env node
// node scripts/glibc-floor.js FILE.node...: the newest version of glibc (GLIBC_), libstdc++ (GLIBCXX_,
// CXXABI_) and libgcc_s (GCC_) each Linux binary needs, read from its version-needs section (readelf -V,
// which reads any architecture's ELF), and exit 1 when one is above the floor: the oldest glibc
// distributions Node 20 runs on (RHEL 8 and Debian 10: glibc 2.28, GCC 8's libstdc++). A binary above it
// fails to load there with "version `GLIBC_2.32' not found". Run by `npm run prebuilds` on what it built and
// by `npm run test:package` on what the tarball holds; native/glibc_floor.h is how the addon stays under it.
'use strict';
const { execFileSync } = require('node:child_process');

const FLOOR = { GLIBC: '2.28', GLIBCXX: '3.4.25', CXXABI: '1.3.11', GCC: '8.0.0' };

const compare = (a, b) => {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  }
  return 0;
};

/** { GLIBC: ['2.2.5', ...], GLIBCXX: [...], ... }: every version the binary names in .gnu.version_r. */
function neededVersions(file) {
  const text = execFileSync('readelf', ['-W', '-V', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const needs = text.slice(text.indexOf('.gnu.version_r'));
  const versions = {};
  for (const [, family, version] of needs.matchAll(/Name: ([A-Z]+)_([\d.]+)/g)) (versions[family] ??= []).push(version);
  return versions;
}

/** The symbols that need `family_version` (readelf --dyn-syms names them sym@VERSION). */
function symbolsNeeding(file, tag) {
  const text = execFileSync('readelf', ['-W', '--dyn-syms', file], { encoding: 'utf8' });
  return [...text.matchAll(/ (\S+)@(\S+)/g)].filter(([, , version]) => version === tag).map(([, name]) => name);
}

let failed = false;
for (const file of process.argv.slice(2)) {
  let versions;
  try {
    versions = neededVersions(file);
  } catch (err) {
    console.error(`glibc-floor: readelf cannot read ${file} (${err.message.split('\n')[0]})`);
    failed = true;
    continue;
  }
  // No GLIBC_ version at all means this parse saw nothing, not that the binary is fine.
  if (!versions.GLIBC) {
    console.error(`glibc-floor: ${file} names no GLIBC_ version (is it a glibc ELF binary? readelf -V shows what it holds)`);
    failed = true;
    continue;
  }
  const highest = Object.entries(versions).map(([family, list]) => [family, list.sort(compare).at(-1)]);
  const above = highest.filter(([family, version]) => FLOOR[family] !== undefined && compare(version, FLOOR[family]) > 0);
  const summary = highest.map(([family, version]) => `${family}_${version}`).join(', ');
  if (above.length === 0) {
    console.log(`${file}: needs at most ${summary} (floor GLIBC_${FLOOR.GLIBC}, GLIBCXX_${FLOOR.GLIBCXX})`);
    continue;
  }
  failed = true;
  for (const [family, version] of above) {
    const tag = `${family}_${version}`;
    console.error(`glibc-floor: ${file} needs ${tag}, above the floor ${family}_${FLOOR[family]}, for ${symbolsNeeding(file, tag).join(', ') || '(no symbol named)'}`
      + ' (pin the older version in native/glibc_floor.h)');
  }
}
process.exit(failed ? 1 : 0);
