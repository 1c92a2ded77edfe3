/**
 * Attached mode as an application embeds it: the echo server shares Node's event loop with
 * timers and an HTTP server, on the main thread and in a worker thread.
 */
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { EchoServer } from '../lib/echo/server';
import { Reactor } from '../lib/reactor';
import { concurrentEcho } from './echo-clients';
import { attachVariants, makeSelector } from './fixtures';
import { leakedSince, openKernelObjects } from './helpers';

/** One GET on a connection of its own (no keep-alive agent), resolved once that socket has closed. */
function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => request.socket!.once('close', () => resolve(body)));
    });
    request.on('error', reject);
  });
}

describe('embedding: attached reactor inside an application', function () {
  this.timeout(60000);

  for (const variant of attachVariants()) {
    it(`${variant.name}: timers keep firing and an HTTP server answers while 100 clients are echoed`, async () => {
      const before = openKernelObjects();
      const reactor = new Reactor(makeSelector(variant));
      const echo = new EchoServer({ reactor, edge: variant.options.edgeTriggered });
      const { port } = echo.listen();
      reactor.attach({ via: variant.via });
      assert.equal(reactor.attachedVia, variant.via);
      const web = http.createServer((_req, res) => res.end('ok'));
      await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
      const webPort = (web.address() as { port: number }).port;

      // Node's own timers and HTTP server must keep working on the loop the reactor shares. (No bound
      // on the loop's longest gap: on a busy machine that measures the machine, not the reactor.)
      let ticks = 0;
      const interval = setInterval(() => {
        ticks++;
      }, 5);
      const answers: string[] = [];
      const polling = (async () => {
        for (let i = 0; i < 20; i++) answers.push(await get(webPort));
      })();
      try {
        await Promise.all([concurrentEcho({ port }, 100, 64 * 1024, 2024), polling]);
      } finally {
        clearInterval(interval);
        echo.close();
        reactor.close();
        await new Promise((r) => web.close(r));
      }
      assert.deepEqual(answers, Array(20).fill('ok'));
      assert.ok(ticks > 0, 'the interval never fired');
      assert.deepEqual(leakedSince(before), []);
    });

    it(`${variant.name}: works the same in a worker thread`, async () => {
      const worker = new Worker(path.join(__dirname, 'fixtures', 'echo-worker.js'), {
        workerData: { mechanism: variant.mechanism, edge: variant.options.edgeTriggered === true, via: variant.via },
      });
      // Taken at once: Node emits the worker's last 'message' and then 'exit' in one synchronous
      // call, so a listener added after awaiting that message would miss the exit.
      const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
      try {
        const { port, via } = await new Promise<{ port: number; via: string }>((resolve, reject) => {
          worker.once('message', resolve);
          worker.once('error', reject);
        });
        assert.equal(via, variant.via);
        await concurrentEcho({ port }, 50, 32 * 1024, 77);
        const stats = await new Promise<{ accepted: number }>((resolve, reject) => {
          worker.once('message', resolve);
          worker.once('error', reject);
          worker.postMessage('stop');
        });
        assert.equal(stats.accepted, 50);
        assert.equal(await exited, 0, 'the worker exits by itself once its reactor is closed');
      } finally {
        await worker.terminate();
      }
    });
  }
});
