#!/usr/bin/env node
// The package's install script (plain JavaScript: it runs before anything is compiled).
//
// 1. If node-gyp-build finds an addon that loads (the prebuild for this platform, or an earlier build in
//    build/), there is nothing to do: most installs stop here, silently, with no compiler needed.
// 2. Otherwise it says so in one line and builds from source with node-gyp, once python3, make and a C++
//    compiler are there; when one is not, one line names what is missing and the install fails, rather than
//    node-gyp's thirty lines about Python. node-addon-api (headers only)
//    is needed for that build alone, so it is not a dependency of the package: when it does not resolve, it
//    is fetched into build-deps/ (not into the package's own node_modules, where an `npm install`
//    would pull the whole development tree) and handed to node-gyp through NODE_PATH.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const pkg = require(path.join(root, 'package.json'));
const napi = Math.max(...pkg.binary.napi_versions);
const addonApiRange = (pkg.devDependencies || {})['node-addon-api'] || '^8';

function loads() {
  try {
    require('node-gyp-build')(root);
    return true;
  } catch {
    return false;
  }
}

function fail(message, status = 1) {
  process.stderr.write(`iomux: ${message}\n`);
  process.exit(status);
}

/** linux-x64, or linux-x64 (musl), as prebuilds are told apart. */
function platformName() {
  const musl = process.platform === 'linux' && process.report.getReport().header.glibcVersionRuntime === undefined;
  return `${process.platform}-${process.arch}${musl ? ' (musl)' : ''}`;
}

/** What node-gyp needs on Unix and PATH lacks (Windows: node-gyp finds Visual Studio and Python itself). */
function missingTools() {
  if (process.platform === 'win32') return [];
  const onPath = (name) => path.isAbsolute(name) ? isExecutable(name)
    : (process.env.PATH || '').split(path.delimiter).some((dir) => dir !== '' && isExecutable(path.join(dir, name)));
  const missing = [];
  const python = process.env.npm_config_python || process.env.PYTHON;
  if (python ? !onPath(python) : !onPath('python3')) missing.push('python3');
  if (!onPath('make')) missing.push('make');
  const cxx = process.env.CXX ? process.env.CXX.split(' ')[0] : null;
  if (cxx ? !onPath(cxx) : !['c++', 'g++', 'clang++'].some(onPath)) missing.push('a C++ compiler');
  return missing;
}

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

const REBUILD = 'npm rebuild iomux';

/** Runs a command with inherited output; exits on failure. */
function run(file, args, options = {}) {
  const result = spawnSync(file, args, { stdio: 'inherit', ...options });
  if (result.error) return result.error;
  if (result.status !== 0) {
    fail(`${[path.basename(file), ...args].join(' ')} failed (exit ${result.status ?? result.signal}, above); fix what it reports, then ${REBUILD}`);
  }
  return null;
}

/** A NODE_PATH entry that holds node-addon-api of the right major version, or '' when it already resolves. */
function addonApiPath() {
  const major = addonApiRange.replace(/^[^\d]*/, '').split('.')[0];
  try {
    const found = require(require.resolve('node-addon-api/package.json', { paths: [root] }));
    if (found.version.split('.')[0] === major) return '';
  } catch {
    // not installed: fetched below
  }
  // Beside build/, which node-gyp rebuild empties first.
  const prefix = path.join(root, 'build-deps');
  if (!fs.existsSync(path.join(prefix, 'node_modules', 'node-addon-api', 'package.json'))) {
    fs.mkdirSync(prefix, { recursive: true });
    const npm = process.env.npm_execpath;
    const args = ['install', '--no-save', '--no-package-lock', '--ignore-scripts', '--no-audit', '--no-fund',
      '--prefix', prefix, `node-addon-api@${addonApiRange}`];
    const error = npm ? run(process.execPath, [npm, ...args]) : run('npm', args, { shell: process.platform === 'win32' });
    if (error) fail(`cannot run npm to fetch node-addon-api (${error.message}): npm install node-addon-api@${addonApiRange}`);
  }
  return path.join(prefix, 'node_modules');
}

/**
 * In a clone, an addon built before the sources last changed (a pull that brought native/ changes):
 * node-gyp-build would load it as it is, and the new bindings would be missing. Not in a package, which
 * has no build/ until it builds one from its own sources.
 */
function staleBuild() {
  const built = path.join(root, 'build', 'Release', 'iomux.node');
  if (!fs.existsSync(built)) return null;
  const builtAt = fs.statSync(built).mtimeMs;
  const sources = [path.join(root, 'binding.gyp'), ...fs.readdirSync(path.join(root, 'native')).map((f) => path.join(root, 'native', f))];
  return sources.find((file) => fs.statSync(file).mtimeMs > builtAt) ?? null;
}

const stale = staleBuild();
if (stale === null && loads()) process.exit(0);
if (stale !== null) process.stdout.write(`iomux: ${path.relative(root, stale)} is newer than build/Release/iomux.node; building again\n`);

const missing = missingTools();
if (missing.length > 0) {
  const list = missing.length > 1 ? `${missing.slice(0, -1).join(', ')} and ${missing[missing.length - 1]}` : missing[0];
  fail(`no prebuilt binary for ${platformName()}, and building one needs ${list}, which PATH lacks: install `
    + `${missing.length > 1 ? 'them' : 'it'} (Debian: apt-get install python3 make g++; Alpine: apk add python3 make g++), then ${REBUILD}`);
}
if (stale === null) process.stdout.write(`iomux: no prebuilt binary for ${process.platform}-${process.arch} (N-API v${napi}); building from source\n`);
const nodePath = addonApiPath();
const env = { ...process.env };
if (nodePath) env.NODE_PATH = [nodePath, process.env.NODE_PATH].filter(Boolean).join(path.delimiter);
// npm names its own node-gyp to install scripts; outside npm, node-gyp from PATH, else through npx.
const nodeGyp = process.env.npm_config_node_gyp;
const error = nodeGyp
  ? run(process.execPath, [nodeGyp, 'rebuild'], { cwd: root, env })
  : run('node-gyp', ['rebuild'], { cwd: root, env, shell: process.platform === 'win32' });
if (error) {
  if (error.code !== 'ENOENT') fail(`cannot run node-gyp: ${error.message}`);
  const viaNpx = run('npx', ['--yes', 'node-gyp', 'rebuild'], { cwd: root, env, shell: process.platform === 'win32' });
  if (viaNpx) fail(`cannot run node-gyp (${viaNpx.message}): npm install -g node-gyp, then ${REBUILD}`);
}
if (!loads()) fail(`the addon was built but does not load: require('iomux') says why`);
