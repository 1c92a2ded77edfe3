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

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve(body));
    }).on('error', reject);
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

      let ticks = 0;
      let last = performance.now();
      let longestGap = 0;
      const interval = setInterval(() => {
        const now = performance.now();
        longestGap = Math.max(longestGap, now - last);
        last = now;
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
      // A blocked event loop shows up as a gap of the whole run; generous bound for a busy machine.
      assert.ok(longestGap < 1000, `the event loop was blocked for ${longestGap.toFixed(0)} ms`);
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(leakedSince(before), []);
    });

    it(`${variant.name}: works the same in a worker thread`, async () => {
      const worker = new Worker(path.join(__dirname, 'fixtures', 'echo-worker.js'), {
        workerData: { mechanism: variant.mechanism, edge: variant.options.edgeTriggered === true, via: variant.via },
      });
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
        const code = await new Promise((r) => worker.once('exit', r));
        assert.equal(code, 0, 'the worker exits by itself once its reactor is closed');
      } finally {
        await worker.terminate();
      }
    });
  }
});
