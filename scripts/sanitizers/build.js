#!/usr/bin/env node
// Builds the addon with a sanitizer into its own directory, leaving build/ (the normal addon) alone:
//
//   npm run build:asan  (node scripts/sanitizers/build.js asan)  ->  build-asan/build/Release/iomux.node  (-fsanitize=address,undefined)
//   npm run build:tsan  (node scripts/sanitizers/build.js tsan)  ->  build-tsan/build/Release/iomux.node  (-fsanitize=thread)
//
// node-gyp always builds in <dir>/build, so this writes build-<kind>/binding.gyp: the addon target of
// the root binding.gyp (same sources, defines and flags; read from it, not copied) with the sanitizer
// flags added, and runs node-gyp there (incremental, as npm run build:native). Load the result with IOMUX_ADDON_PATH (lib/native.ts).
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const FLAGS = {
  // Optimised as the normal build (-O3, from node-gyp); no recovery, so a UBSan report ends the process (as halt_on_error).
  asan: ['-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer', '-g'],
  tsan: ['-fsanitize=thread', '-fno-omit-frame-pointer', '-g'],
};
const kind = process.argv[2];
if (!FLAGS[kind]) {
  console.error(`usage: node scripts/sanitizers/build.js ${Object.keys(FLAGS).join('|')}`);
  process.exit(2);
}
const root = path.resolve(__dirname, '..', '..');
const dir = path.join(root, `build-${kind}`);

// binding.gyp is a Python literal with # comments; this one has only whole-line comments.
const gyp = JSON.parse(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, ''));
const addon = gyp.targets.find((target) => target.target_name === 'iomux');
const flags = FLAGS[kind];
const target = {
  ...addon,
  sources: addon.sources.map((source) => path.join('..', source)),
  cflags: [...(addon.cflags || []), ...flags],
  cflags_cc: [...(addon.cflags_cc || []), ...flags],
  ldflags: [...(addon.ldflags || []), ...flags],
};
fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(path.join(dir, 'binding.gyp'), `${JSON.stringify({ targets: [target] }, null, 2)}\n`);
// npm's own node-gyp (npm run names it in npm_config_node_gyp), else one on PATH.
const args = ['configure', 'build', '--release', `--directory=${dir}`];
const nodeGyp = process.env.npm_config_node_gyp;
if (nodeGyp) execFileSync(process.execPath, [nodeGyp, ...args], { cwd: dir, stdio: 'inherit' });
else execFileSync('node-gyp', args, { cwd: dir, stdio: 'inherit' });
console.log(`${kind} addon: ${path.relative(root, path.join(dir, 'build', 'Release', 'iomux.node'))}`);
