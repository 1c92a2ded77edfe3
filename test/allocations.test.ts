/**
 * The attached reactor's wake-up path allocates nothing of its own: a child Node counts every
 * heap allocation of every thread (test/native/count-allocations.c, LD_PRELOAD'ed) while a wait
 * ends and is re-armed thousands of times. Linux with glibc and a C compiler only.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { binding } from '../lib/native';
import { ioUringUnavailable } from '../lib/selectors/io-uring';
import { runNode } from './helpers';
import { skipUnless } from './skip';
import { requireTool } from './run-tool';

const source = path.resolve(__dirname, '..', '..', 'test', 'native', 'count-allocations.c');

/** Builds the counting library once per run; null (with the reason) where it cannot work. */
function buildCounter(): { library: string; dir: string } | string {
  if (process.platform !== 'linux') return 'the counter is an LD_PRELOAD library for glibc';
  const report = process.report.getReport() as { header?: { glibcVersionRuntime?: string } };
  if (report.header?.glibcVersionRuntime === undefined) return 'not glibc';
  requireTool('cc', ['--version'], 'gcc'); // To build test/native/count-allocations.c.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-allocations-'));
  const library = path.join(dir, 'count-allocations.so');
  execFileSync('cc', ['-O2', '-shared', '-fPIC', '-o', library, source]);
  return { library, dir };
}

/**
 * Runs `body` in a child Node whose allocations are counted. The body defines `wakeups(n)`,
 * which resolves after n wake-ups, and `cleanup()`; the child warms up, then reports the
 * allocations per wake-up over `n` more.
 */
async function allocationsPerWakeup(library: string, dir: string, body: string, n = 4000): Promise<number> {
  const counterFile = path.join(dir, `counter-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(counterFile, Buffer.alloc(8));
  // --jitless: no compiler runs (and allocates) in the middle of the window being counted.
  const result = await runNode(`
    const fs = require('node:fs');
    const counter = fs.openSync(process.env.IOMUX_ALLOCATION_COUNTER, 'r');
    const cell = Buffer.alloc(8);
    const allocations = () => (fs.readSync(counter, cell, 0, 8, 0), Number(cell.readBigUInt64LE(0)));
    ${body}
    (async () => {
      await wakeups(500);
      const start = allocations();
      await wakeups(${n});
      const counted = allocations() - start;
      console.log(JSON.stringify({ started: start, perWakeup: counted / ${n} }));
      fs.closeSync(counter);
      cleanup();
    })();`, { args: ['--jitless'], env: { LD_PRELOAD: library, IOMUX_ALLOCATION_COUNTER: counterFile }, timeoutMs: 60000 });
  assert.equal(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout.trim().split('\n').pop()!) as { started: number; perWakeup: number };
  assert.ok(report.started > 1000, `the counter did not count (${report.started} allocations at start-up)`);
  return report.perWakeup;
}

describe('allocations per wake-up (attached mode)', function () {
  this.timeout(120000);
  let counter: { library: string; dir: string } | null = null;

  before(function () {
    const built = buildCounter();
    skipUnless(this, typeof built !== 'string', built as string);
    counter = built;
  });

  after(() => {
    if (counter) fs.rmSync(counter.dir, { recursive: true, force: true });
  });

  it('WaitThread: arm, wake-up and the call into JavaScript allocate nothing beyond Node-API\'s one', async () => {
    const perWakeup = await allocationsPerWakeup(counter!.library, counter!.dir, `
      const { binding, constants, WaitMechanism } = require('./dist/lib/native');
      const { PollFdArray } = require('./dist/lib/pollfds');
      const { socketPair } = require('./dist/test/fixtures');
      // A descriptor that stays readable: every wait ends at once.
      const [a, b] = socketPair();
      binding.send(b, Buffer.from('x'));
      const fds = new PollFdArray(4);
      fds.push(a, constants.POLLIN);
      fds.push(b, constants.POLLIN);
      let left = 0;
      let done = null;
      const arm = () => thread.arm(WaitMechanism.Poll, fds.buffer, fds.length, -1, -1);
      const thread = new binding.WaitThread(() => {
        if (--left > 0) arm();
        else done();
      });
      const wakeups = (n) => new Promise((resolve) => { left = n; done = resolve; arm(); });
      const cleanup = () => { thread.close(); binding.close(a); binding.close(b); };`);
    // One is Node's own: its thread-safe function enters each call through a node::CallbackScope,
    // which allocates (Node 20; perf probe on malloc shows it). Ours were three more: a
    // std::function per call, the snapshot vector per arm, and the lambda's wrapper.
    assert.ok(perWakeup < 1.25, `${perWakeup.toFixed(3)} allocations per wake-up`);
  });

  for (const edge of binding.epoll_wait ? [false, true] : []) {
    it(`a Connection echo on epoll${edge ? ' (edge-triggered)' : ''}, attached: onData → write → send allocates nothing beyond Node-API's one per wake-up`, async () => {
      const perWakeup = await allocationsPerWakeup(counter!.library, counter!.dir, `
        const { binding } = require('./dist/lib/native');
        const { Reactor } = require('./dist/lib/reactor');
        const { createSelector, EVENT_READ } = require('./dist/lib/selectors');
        const { Connection } = require('./dist/lib/stream');
        const { socketPair } = require('./dist/test/fixtures');
        const [a, b] = socketPair();
        const reactor = new Reactor(createSelector('epoll', { edgeTriggered: ${edge} }));
        const conn = new Connection(reactor, a);
        conn.onData = function (data) { this.write(data); };   // The echo: the shared read buffer, written back.
        const byte = Buffer.from('x');
        const scratch = Buffer.alloc(64);
        let left = 0;
        let done = null;
        // The peer: reads the echo, sends the next byte: a round trip is two wake-ups.
        reactor.add(b, EVENT_READ, () => {
          binding.recv(b, scratch, 0, scratch.length);
          if (--left > 0) binding.send(b, byte, 0, 1);
          else { reactor.detach(); done(); }
        });
        const wakeups = (n) => new Promise((resolve) => {
          left = n;
          done = resolve;
          reactor.attach();
          binding.send(b, byte, 0, 1);
        });
        const cleanup = () => { conn.destroy(); reactor.close(); binding.close(b); };`);
      // wakeups(n) counts round trips here, and each is two wake-ups (the connection's read, then the
      // peer's): Node-API's one each, and nothing of the Connection's (a bare handler echoing with
      // recv/send counts the same 2.05 per round trip).
      assert.ok(perWakeup < 2 * 1.25, `${perWakeup.toFixed(3)} allocations per round trip (two wake-ups)`);
    });
  }

  const routes = binding.LoopWatcher ? ['uv-poll', 'wait-thread'] : ['wait-thread'];
  for (const via of routes) {
    const mechanisms = binding.epoll_wait ? ['epoll', 'poll'] : ['poll'];
    // io_uring where this process may use it: its level re-check rides in the turn's enter.
    if (ioUringUnavailable() === null) mechanisms.push('io_uring');
    for (const mechanism of mechanisms) {
      if (via === 'uv-poll' && mechanism === 'poll') continue;
      it(`a reactor attached via ${via} on ${mechanism}: a turn (wake-up, select, dispatch, re-arm) allocates nothing beyond Node-API\'s one`, async () => {
        const perWakeup = await allocationsPerWakeup(counter!.library, counter!.dir, `
          const { binding } = require('./dist/lib/native');
          const { Reactor } = require('./dist/lib/reactor');
          const { createSelector, EVENT_READ } = require('./dist/lib/selectors');
          const { socketPair } = require('./dist/test/fixtures');
          const [a, b] = socketPair();
          binding.send(b, Buffer.from('x'));
          const reactor = new Reactor(createSelector('${mechanism}'));
          let left = 0;
          let done = null;
          // Level-triggered and never read: a is ready on every turn.
          reactor.add(a, EVENT_READ, () => {
            if (--left === 0) { reactor.detach(); done(); }
          });
          const wakeups = (n) => new Promise((resolve) => {
            left = n;
            done = resolve;
            reactor.attach({ via: '${via}' });
            if (reactor.attachedVia !== '${via}') throw new Error('attached via ' + reactor.attachedVia);
          });
          const cleanup = () => { reactor.close(); binding.close(a); binding.close(b); };`);
        // Node-API's own, as above: one per call (uv-poll: the handle scope a call from libuv needs,
        // a heap object in Node 20's napi_open_handle_scope; wait-thread: the callback scope).
        assert.ok(perWakeup < 1.25, `${perWakeup.toFixed(3)} allocations per wake-up`);
      });
    }
  }
});
