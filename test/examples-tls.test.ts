/**
 * docs/streams.md's TLS line server (examples/tls-line-server.ts), run as written: a child process,
 * Node's tls clients verifying its certificate, lines split and merged, "quit", a plaintext client
 * turned away alone, and SIGINT.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { startChild } from './helpers';
import { tlsFixtures } from './tls-fixtures';

function collect(socket: net.Socket): { text: () => string; ended: Promise<void> } {
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    text += chunk;
  });
  socket.on('error', () => undefined);
  return { text: () => text, ended: new Promise((resolve) => socket.once('close', () => resolve())) };
}

describe('examples: the TLS line server of docs/streams.md', function () {
  this.timeout(20000);
  const root = path.resolve(__dirname, '..', '..');

  it('docs/streams.md shows the example exactly as shipped', () => {
    const doc = fs.readFileSync(path.join(root, 'docs', 'streams.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## TLS'));
    const shown = /```ts\n([\s\S]*?)```/.exec(section)![1];
    const shipped = fs.readFileSync(path.join(root, 'examples', 'tls-line-server.ts'), 'utf8');
    const body = shipped.slice(shipped.indexOf('import '));
    assert.equal(shown, body.replace("from '../lib'", "from 'iomux'"));
  });

  it('answers lines over TLS, ends on quit with close_notify, turns a plaintext client away alone, stops on SIGINT', async () => {
    const fx = await tlsFixtures();
    const { child, match, exited } = await startChild(process.execPath,
      [path.resolve(__dirname, '..', 'examples', 'tls-line-server.js'), fx.chain.certFile, fx.chain.keyFile, '0'], /tls line server on [^:]+:(\d+)/);
    const port = Number(match[1]);
    try {
      const plain = net.connect(port, '127.0.0.1');
      const refused = collect(plain);
      plain.write('hello in clear\n');
      const client = tls.connect({ port, host: '127.0.0.1', ca: fx.chain.ca.cert });
      const received = collect(client);
      await new Promise((resolve) => client.once('secureConnect', resolve));
      assert.equal(client.authorized, true);
      client.write('first li');
      client.write('ne\r\nsecond\nquit\n'); // Split and merged on purpose: framing sorts it out.
      await received.ended;
      assert.equal(received.text(), 'hello over TLSv1.3; "quit" ends\nFIRST LINE\nSECOND\nbye\n');
      await refused.ended;
      assert.ok(!refused.text().includes('HELLO'), 'plaintext got an answer');
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited, 0);
  });
});
