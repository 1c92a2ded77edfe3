/**
 * The seed's socketserver example (examples/my-tcp-handle.ts) as a user runs it: a child process,
 * two clients at once. The first one holds its connection open — its handler is blocked in recv on
 * its worker thread — while the second is served in full.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';

const script = path.resolve(__dirname, '..', 'examples', 'my-tcp-handle.js');

/** Sends `text` on a connected socket and resolves with the reply's first chunk. */
function ask(socket: net.Socket, text: string): Promise<string> {
  return new Promise((resolve) => {
    socket.once('data', (d: Buffer) => resolve(d.toString()));
    socket.write(text);
  });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('examples: the seed\'s MyTCPHandle on a ThreadingServer', function () {
  this.timeout(30000);

  it('serves two clients at once, each upper-cased, and logs setup, each message and finish', async () => {
    const child = spawn(process.execPath, [script, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let out = '';
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    let notify = () => undefined as void;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      notify();
    });
    const printed = (pattern: RegExp) => new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = pattern.exec(out);
        if (m) resolve(m);
      };
      notify = check;
      check();
      void exited.then(() => reject(new Error(`exited before printing ${pattern}: ${out}`)));
    });
    try {
      const port = Number((await printed(/listening on 127\.0\.0\.1:(\d+)/))[1]);
      const first = await connect(port);
      assert.equal(await ask(first, 'hello'), 'HELLO');
      // The first client stays: its handler waits in recv on its own thread. The second is served anyway.
      const second = await connect(port);
      assert.equal(await ask(second, 'wörld 好好'), 'WÖRLD 好好');
      const secondGone = new Promise((resolve) => second.once('close', resolve));
      second.end();
      await secondGone;
      assert.equal(await ask(first, 'still here'), 'STILL HERE');
      const firstGone = new Promise((resolve) => first.once('close', resolve));
      first.end();
      await firstGone;
      await printed(new RegExp(`finish run after handle: 127\\.0\\.0\\.1:\\d+[\\s\\S]*finish run after handle`));
      assert.match(out, /before handle, connection established: 127\.0\.0\.1:\d+/);
      assert.match(out, /127\.0\.0\.1:\d+ sent: "hello"/);
      assert.match(out, /127\.0\.0\.1:\d+ sent: "wörld 好好"/);
      assert.match(out, /127\.0\.0\.1:\d+ connection lost/);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, out);
  });
});
