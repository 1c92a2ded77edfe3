/**
 * Signals and a reactor, as Node really behaves: a `process.on('SIGTERM')` listener is JavaScript
 * run by Node's event loop, so while `reactor.run()` blocks the thread it cannot run — the server
 * does not stop, and since adding the listener took away SIGTERM's default (exit), the signal
 * seems ignored. It runs once run() returns. Attached, the same listener runs at once. docs/streams.md
 * ("Signals") says which to use; a reactor blocked on a worker thread is woken by the main thread
 * with a Waker (what `iomux serve` does).
 */
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as path from 'node:path';
import { startChild } from './helpers';

const lib = JSON.stringify(path.resolve(__dirname, '..', 'lib'));

describe('reactor: signals reach JavaScript only through Node\'s event loop', function () {
  this.timeout(60000);

  it('blocking run(): a SIGTERM listener runs only after run() returns (here: stopped by a connection)', async () => {
    const script = `
      const { Reactor, Listener } = require(${lib});
      const reactor = new Reactor();
      let keepAlive;
      process.on('SIGTERM', () => { console.log('SIGTERM listener'); clearInterval(keepAlive); });
      const listener = new Listener(reactor, { endpoint: { port: 0 } }, (conn) => {
        conn.onData = () => { console.log('stopped by a connection'); conn.destroy(); reactor.stop(); };
      });
      console.log('running on ' + listener.listen().port);
      reactor.run();
      console.log('run returned');
      listener.close();
      reactor.close();
      keepAlive = setInterval(() => {}, 1000); // Node's loop must turn for the signal's listener to run.
    `;
    const started = await startChild(process.execPath, ['-e', script], /running on (\d+)\n/);
    started.child.kill('SIGTERM');
    const client = net.connect(Number(started.match[1]), '127.0.0.1', () => client.write('stop'));
    client.on('error', () => undefined); // The child destroys it: a reset is fine.
    assert.equal(await started.exited, 0);
    client.destroy();
    assert.deepEqual(started.output().trim().split('\n').slice(1), ['stopped by a connection', 'run returned', 'SIGTERM listener']);
  });

  it('attached: the same SIGTERM listener runs while the reactor serves, and shuts the listener down', async () => {
    const script = `
      const { Reactor, Listener } = require(${lib});
      const reactor = new Reactor();
      const listener = new Listener(reactor, { endpoint: { port: 0 } }, () => undefined);
      process.on('SIGTERM', () => {
        console.log('SIGTERM listener');
        listener.shutdown(1000, () => { console.log('shut down'); reactor.close(); });
      });
      console.log('running on ' + listener.listen().port);
      reactor.attach();
    `;
    const started = await startChild(process.execPath, ['-e', script], /running on (\d+)\n/);
    started.child.kill('SIGTERM');
    assert.equal(await started.exited, 0);
    assert.deepEqual(started.output().trim().split('\n').slice(1), ['SIGTERM listener', 'shut down']);
  });
});
