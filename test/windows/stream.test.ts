/**
 * The stream layer on Windows' mechanisms (WSAPoll and select), attached to Node's event loop, with
 * Node's `net` sockets as peers: gathered writes (WSASend), backpressure to a slow reader, sendFile
 * through its read + send fallback (Windows has no sendfile binding), half-close, a refused connect
 * and an idle timeout.
 */
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { binding } from '../../lib/native';
import { Reactor } from '../../lib/reactor';
import { createSelector, MechanismName } from '../../lib/selectors/default';
import { Connection } from '../../lib/stream/connection';
import { Listener } from '../../lib/stream/listener';
import { closedPort } from './loopback';

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** Everything `socket` receives until its end of stream, read in pauses when `slow`; then it ends too. */
function readAll(socket: net.Socket, slow = false): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (slow) {
        socket.pause();
        setTimeout(() => socket.resume(), 1);
      }
    });
    socket.once('end', () => {
      socket.end();
      resolve(Buffer.concat(chunks));
    });
    socket.once('error', reject);
  });
}

function connectClient(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(socket));
    socket.once('error', reject);
  });
}

for (const mechanism of ['wsapoll', 'select'] as MechanismName[]) {
  describe(`stream layer on ${mechanism} (Windows)`, () => {
    let reactor: Reactor;
    let listener: Listener;
    let setup: (conn: Connection) => void;
    let port: number;

    beforeEach(() => {
      reactor = new Reactor(createSelector(mechanism));
      listener = new Listener(reactor, {}, (conn) => setup(conn));
      port = listener.listen().port;
      reactor.attach();
    });

    afterEach(() => {
      listener.close();
      reactor.close();
    });

    it('writes made while handling one read leave together (one WSASend), in order', async () => {
      setup = (conn) => {
        conn.onData = function (data) {
          this.write('<');
          this.write(data);
          this.write('>');
        };
      };
      const socket = await connectClient(port);
      socket.end('hello');
      assert.equal((await readAll(socket)).toString(), '<hello>');
    });

    it('backpressure: 8 MiB to a slow reader, write() false then onDrain, byte-exact', async () => {
      const data = randomBytes(8 * 1024 * 1024);
      let refusals = 0;
      setup = (conn) => {
        let offset = 0;
        const pump = (): void => {
          while (offset < data.length) {
            const chunk = data.subarray(offset, offset + 64 * 1024);
            offset += chunk.length;
            if (!conn.write(chunk)) {
              refusals++;
              return;
            }
          }
          conn.end();
        };
        conn.onDrain = pump;
        pump();
      };
      const socket = await connectClient(port);
      const received = await readAll(socket, true);
      assert.equal(sha256(received), sha256(data));
      assert.ok(refusals > 0, 'the queue filled at least once');
    });

    it('sendFile (read + send fallback): a range of a file between two writes, byte-exact', async () => {
      assert.equal(binding.sendfile, undefined, 'Windows has no sendfile binding');
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-sendfile-'));
      const file = path.join(dir, 'data.bin');
      const content = randomBytes(4 * 1024 * 1024 + 123);
      fs.writeFileSync(file, content);
      const fd = fs.openSync(file, 'r');
      try {
        let done: Error | null | undefined;
        setup = (conn) => {
          conn.write('HEAD');
          conn.sendFile(fd, 1000, content.length - 1000, (err) => {
            done = err;
          });
          conn.end('TAIL');
        };
        const socket = await connectClient(port);
        const received = await readAll(socket, true);
        assert.equal(sha256(received), sha256(Buffer.concat([Buffer.from('HEAD'), content.subarray(1000), Buffer.from('TAIL')])));
        assert.equal(done, null);
      } finally {
        fs.closeSync(fd);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('half-close by us: end() is the peer\'s end of stream, and we go on receiving', async () => {
      let received = '';
      const closed = new Promise<Error | null>((resolve) => {
        setup = (conn) => {
          conn.onData = (data) => {
            received += data.toString();
          };
          conn.onClose = resolve;
          conn.end('bye');
        };
      });
      const socket = await connectClient(port);
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => chunks.push(d));
      await new Promise((resolve) => socket.once('end', resolve));
      socket.end('after your end');
      assert.equal(await closed, null);
      assert.equal(Buffer.concat(chunks).toString(), 'bye');
      assert.equal(received, 'after your end');
    });

    it('connect to a port nobody listens on: one ECONNREFUSED, one close', async () => {
      const conn = Connection.connect(reactor, { host: '127.0.0.1', port: closedPort() }, { timeoutMs: 20000 });
      const events: string[] = [];
      const err = await new Promise<Error | null>((resolve) => {
        conn.onConnect = () => events.push('connect');
        conn.onError = () => events.push('error');
        conn.onClose = resolve;
      });
      assert.equal((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
      assert.deepEqual(events, ['error']);
    });

    it('idle timeout: fires once with ETIMEDOUT', async () => {
      const closed = new Promise<Error | null>((resolve) => {
        setup = (conn) => {
          conn.setIdleTimeout(100);
          conn.onClose = resolve;
        };
      });
      const socket = await connectClient(port);
      const err = await closed;
      assert.equal((err as NodeJS.ErrnoException).code, 'ETIMEDOUT');
      socket.destroy();
    });
  });
}
