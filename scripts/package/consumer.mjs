// An ES module consumer of the installed package (scripts/test-package.sh copies it into each project):
// named imports, an echo round trip on the reactor, and for every subpath of the exports map the names
// `import` gives, which must be require's names exactly (the same objects too).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import net from 'node:net';
import { Reactor, EchoServer, DefaultSelector, binding, constants } from 'iomux';

const require = createRequire(import.meta.url);
assert.equal(typeof binding.socket, 'function');
assert.equal(typeof constants.AF_INET, 'number');

const reactor = new Reactor(new DefaultSelector());
const echo = new EchoServer({ reactor, host: '127.0.0.1', port: 0 });
const { port } = echo.listen();
reactor.attach();
const payload = Buffer.alloc(256 * 1024, 'esm ');
const received = await new Promise((resolve, reject) => {
  const chunks = [];
  const client = net.connect(port, '127.0.0.1', () => client.end(payload));
  client.on('data', (chunk) => chunks.push(chunk));
  client.on('error', reject);
  client.on('close', () => resolve(Buffer.concat(chunks)));
});
assert.ok(received.equals(payload), 'the echo differs from what was sent');
echo.close();
reactor.close();

const exportsMap = require('iomux/package.json').exports;
let names = 0;
for (const subpath of Object.keys(exportsMap).filter((s) => s !== './package.json')) {
  const spec = subpath === '.' ? 'iomux' : `iomux/${subpath.slice(2)}`;
  const esm = await import(spec);
  const cjs = require(spec);
  const esmNames = Object.keys(esm).filter((k) => k !== 'default').sort();
  const cjsNames = Object.keys(cjs).filter((k) => k !== '__esModule').sort();
  assert.deepEqual(esmNames, cjsNames, `${spec}: import and require give different names`);
  for (const k of esmNames) assert.equal(esm[k], cjs[k], `${spec}: ${k} is not require's object`);
  assert.equal(esm.default, cjs, `${spec}: default is not the CommonJS module`);
  names += esmNames.length;
}
console.log(`esm: echoed ${payload.length} bytes; ${Object.keys(exportsMap).length - 1} subpaths, ${names} names, the same as require's`);
