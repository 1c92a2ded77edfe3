/**
 * The echo server on Windows mechanisms, attached to Node's event loop, with Node's own `net`
 * sockets (libuv's Winsock code) as clients: bytes come back intact and in order, several
 * clients are served at once, and a large transfer passes through the backpressure path.
 */
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { EchoServer } from '../../lib/echo/server';
import { MechanismName } from '../../lib/selectors/default';

/** Connects, sends `data`, half-closes, and resolves with everything the server sent back. */
function echoThrough(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.end(data));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
    socket.setTimeout(15000, () => socket.destroy(new Error('no echo within 15 s')));
  });
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

for (const mechanism of ['wsapoll', 'select'] as MechanismName[]) {
  describe(`echo server on ${mechanism} (Windows)`, () => {
    let server: EchoServer;
    let port: number;

    beforeEach(() => {
      server = new EchoServer({ mechanism, highWater: 64 * 1024 });
      port = server.listen().port;
      server.reactor.attach();
    });

    afterEach(() => server.close());

    it('echoes what a client sends and closes after the client half-closes', async () => {
      const reply = await echoThrough(port, Buffer.from('hello from node:net\n'));
      assert.equal(reply.toString(), 'hello from node:net\n');
    });

    it('serves several clients at once, each getting back exactly its own bytes', async () => {
      const payloads = Array.from({ length: 8 }, (_, i) => Buffer.from(`client ${i}: ${'x'.repeat(1000 * (i + 1))}`));
      const replies = await Promise.all(payloads.map((p) => echoThrough(port, p)));
      replies.forEach((reply, i) => assert.ok(reply.equals(payloads[i]), `client ${i}`));
      assert.equal(server.stats.accepted, 8);
    });

    it('passes 4 MiB through intact, past the high-water mark (backpressure)', async () => {
      const data = randomBytes(4 * 1024 * 1024);
      const reply = await echoThrough(port, data);
      assert.equal(reply.length, data.length);
      assert.equal(sha256(reply), sha256(data));
      assert.ok(server.stats.maxQueued <= 64 * 1024 + 64 * 1024, `maxQueued ${server.stats.maxQueued}`);
    });
  });
}
