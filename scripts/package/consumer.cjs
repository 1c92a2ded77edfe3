// A CommonJS consumer of the installed package (scripts/test-package.sh copies it into each project):
// require('iomux') loads the addon from the place the caller names (argv[2]: prebuild or build), and an echo
// server on the reactor, attached to Node's loop, echoes what a net client sends.
'use strict';
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { Reactor, EchoServer, binding, constants } = require('iomux');

const expected = process.argv[2];
const loaded = require('node-gyp-build').path(path.dirname(require.resolve('iomux/package.json')));
assert.ok(loaded.includes(expected), `the addon came from ${loaded}, expected ${expected}`);
assert.equal(typeof binding.socket, 'function');
assert.equal(typeof constants.AF_INET, 'number');

const reactor = new Reactor();
const echo = new EchoServer({ reactor, host: '127.0.0.1', port: 0 });
const { port } = echo.listen();
reactor.attach();
const payload = Buffer.alloc(256 * 1024, 'cjs ');
const client = net.connect(port, '127.0.0.1', () => client.end(payload));
const chunks = [];
client.on('data', (chunk) => chunks.push(chunk));
client.on('close', () => {
  assert.ok(Buffer.concat(chunks).equals(payload), 'the echo differs from what was sent');
  echo.close();
  reactor.close();
  console.log(`cjs: echoed ${payload.length} bytes through ${path.relative(process.cwd(), loaded)}`);
});
