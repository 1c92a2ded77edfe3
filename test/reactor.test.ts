/** The reactor: dispatch, timers, stale events, and both run modes. */
import * as assert from 'node:assert/strict';
import { binding, constants } from '../lib/native';
import { Reactor } from '../lib/reactor';
import { EVENT_READ } from '../lib/selectors/selector';
import { attachVariants, closeAll, makeSelector, selectorVariants, socketPair } from './fixtures';
import { leakedSince, openKernelObjects, runNode } from './helpers';
import { skipUnless } from './skip';

const byte = Buffer.from('x');
const sink = Buffer.alloc(1024);

describe('reactor', () => {
  let before: Map<number, string>;
  beforeEach(() => {
    before = openKernelObjects();
  });
  afterEach(() => {
    assert.deepEqual(leakedSince(before), []);
  });

  describe('timers', () => {
    it('fire in deadline order, cleared ones never, intervals repeat; run() returns when nothing is left', () => {
      const reactor = new Reactor();
      const fired: string[] = [];
      // 'b' is armed first with the later deadline; the gap (48 ms) outlasts a descheduling between
      // the two calls on a busy machine or under a sanitizer, which a 4 ms gap did not.
      reactor.setTimeout(() => fired.push('b'), 50);
      reactor.setTimeout(() => fired.push('a'), 2);
      const cleared = reactor.setTimeout(() => fired.push('never'), 4);
      reactor.clearTimer(cleared);
      let ticks = 0;
      const interval = reactor.setInterval(() => {
        fired.push('tick');
        if (++ticks === 3) reactor.clearTimer(interval);
      }, 3);
      reactor.run();
      reactor.close();
      assert.deepEqual(fired.filter((f) => f !== 'tick'), ['a', 'b']);
      assert.equal(fired.filter((f) => f === 'tick').length, 3);
      assert.equal(fired.includes('never'), false);
    });
  });

  for (const variant of selectorVariants()) {
    describe(`on ${variant.name}`, () => {
      it('dispatches ready events to the handler of each descriptor', () => {
        const reactor = new Reactor(makeSelector(variant));
        const [a, b] = socketPair();
        const seen: number[] = [];
        reactor.add(a, EVENT_READ, (events, fd) => {
          seen.push(events);
          binding.recv(fd, sink);
          reactor.stop();
        });
        binding.send(b, byte);
        reactor.run();
        reactor.close();
        closeAll(a, b);
        assert.deepEqual(seen, [EVENT_READ]);
      });

      it('stop() from a handler ends run() after the current turn', () => {
        const reactor = new Reactor(makeSelector(variant));
        const [a, b] = socketPair();
        let calls = 0;
        // Each call makes the next one ready (a new arrival, so edge-triggered too): without
        // stop() this would turn forever.
        reactor.add(a, EVENT_READ, () => {
          binding.recv(a, sink);
          binding.send(b, byte);
          if (++calls === 5) reactor.stop();
        });
        binding.send(b, byte);
        reactor.run();
        reactor.close();
        closeAll(a, b);
        assert.equal(calls, 5);
      });

      it('never hands a stale event to the handler of a reused descriptor number', () => {
        const reactor = new Reactor(makeSelector(variant));
        const [a1, b1] = socketPair();
        const [a2, b2] = socketPair();
        const extra: number[] = [];
        let reusedPair: [number, number] | null = null;
        const calls: string[] = [];
        reactor.add(a1, EVENT_READ, () => {
          calls.push('first');
          binding.recv(a1, sink);
          // Close a2 while its event is still in this batch, and take its number at once.
          reactor.remove(a2);
          binding.close(a2);
          for (;;) {
            const p = socketPair();
            if (p[0] === a2) { reusedPair = p; break; }
            extra.push(...p);
          }
          reactor.add(reusedPair[0], EVENT_READ, () => {
            calls.push('newcomer');
            binding.recv(reusedPair![0], sink);
          });
          binding.send(reusedPair[1], byte);
        });
        reactor.add(a2, EVENT_READ, () => calls.push('stale'));
        binding.send(b1, byte);
        binding.send(b2, byte);
        // Both ready in one batch (a1 registered first, so it is dispatched first on every mechanism).
        reactor.runOnce(1000);
        assert.deepEqual(calls, ['first'], 'the old a2 event must be dropped, not given to the newcomer');
        reactor.runOnce(1000);
        assert.deepEqual(calls, ['first', 'newcomer']);
        reactor.close();
        closeAll(a1, b1, b2, ...reusedPair!, ...extra);
      });

      it('a handler that throws: the rest of its batch still gets its events, the due timer fires, then onError gets the error', () => {
        const reactor = new Reactor(makeSelector(variant));
        const [a1, b1] = socketPair();
        const [a2, b2] = socketPair();
        const boom = new Error('boom');
        const order: string[] = [];
        // Whichever handler the mechanism dispatches first throws; the other must still run.
        const handler = (_: number, fd: number): void => {
          binding.recv(fd, sink);
          order.push(`fd ${fd}`);
          if (order.length === 1) throw boom;
        };
        reactor.add(a1, EVENT_READ, handler);
        reactor.add(a2, EVENT_READ, handler);
        reactor.setTimeout(() => order.push('timer'), 0);
        reactor.onError = (err) => order.push(err === boom ? 'onError(boom)' : `onError(${String(err)})`);
        binding.send(b1, byte);
        binding.send(b2, byte);
        // Both are readable before the wait: one batch (a1 and a2 in some order), then the timer.
        reactor.runOnce(1000);
        assert.deepEqual(order.slice(0, 2).sort(), [`fd ${a1}`, `fd ${a2}`].sort());
        assert.deepEqual(order.slice(2), ['timer', 'onError(boom)'], 'onError runs once the turn is complete');
        reactor.close();
        closeAll(a1, b1, a2, b2);
      });

      it('run() with the default onError throws a handler\'s error once its turn is complete; run() again carries on', () => {
        const reactor = new Reactor(makeSelector(variant));
        const [a1, b1] = socketPair();
        const [a2, b2] = socketPair();
        const boom = new Error('boom');
        const served: number[] = [];
        const handler = (_: number, fd: number): void => {
          binding.recv(fd, sink);
          served.push(fd);
          if (served.length === 1) throw boom;
          if (served.length === 3) reactor.stop();
        };
        reactor.add(a1, EVENT_READ, handler);
        reactor.add(a2, EVENT_READ, handler);
        binding.send(b1, byte);
        binding.send(b2, byte);
        assert.throws(() => reactor.run(), (err) => err === boom);
        assert.deepEqual([...served].sort(), [a1, a2].sort(), 'both handlers ran before run() threw');
        binding.send(b1, byte);
        reactor.run();
        assert.deepEqual(served.slice(2), [a1]);
        reactor.close();
        closeAll(a1, b1, a2, b2);
      });

      it('a handler that closes the reactor mid-batch: the rest of the batch is dropped, nothing breaks', () => {
        const reactor = new Reactor(makeSelector(variant));
        const [a1, b1] = socketPair();
        const [a2, b2] = socketPair();
        let calls = 0;
        const handler = (): void => {
          calls++;
          reactor.close();
        };
        reactor.add(a1, EVENT_READ, handler);
        reactor.add(a2, EVENT_READ, handler);
        binding.send(b1, byte);
        binding.send(b2, byte);
        reactor.run();
        closeAll(a1, b1, a2, b2);
        assert.equal(calls, 1);
        assert.equal(reactor.selector.closed, true);
      });
    });
  }

  for (const variant of attachVariants()) {
    describe(`attached, ${variant.name}`, () => {
      const attached = (reactor: Reactor): Reactor => {
        reactor.attach({ via: variant.via });
        assert.equal(reactor.attachedVia, variant.via);
        return reactor;
      };

      it('serves inside the event loop and leaves it when closed', async () => {
        const reactor = new Reactor(makeSelector(variant));
        const [a, b] = socketPair();
        const received = await new Promise<string>((resolve) => {
          reactor.add(a, EVENT_READ, () => {
            const n = binding.recv(a, sink);
            resolve(sink.toString('utf8', 0, n));
          });
          attached(reactor);
          // Sent from a later turn of Node's loop, while the reactor waits.
          setTimeout(() => binding.send(b, Buffer.from('hello')), 10);
        });
        reactor.close();
        assert.equal(reactor.attachedVia, null);
        closeAll(a, b);
        assert.equal(received, 'hello');
      });

      it('sees a descriptor added outside dispatch while a wait is in flight', async () => {
        const reactor = attached(new Reactor(makeSelector(variant)));
        const [a, b] = socketPair();
        // Let the wait start on an empty interest set first.
        await new Promise((r) => setTimeout(r, 20));
        const got = await new Promise<number>((resolve) => {
          reactor.add(a, EVENT_READ, () => resolve(binding.recv(a, sink)));
          binding.send(b, byte);
        });
        reactor.close();
        closeAll(a, b);
        assert.equal(got, 1);
      });

      it('a descriptor removed and closed while a wait is in flight is no error, and the reactor goes on serving', async () => {
        const reactor = attached(new Reactor(makeSelector(variant)));
        const errors: unknown[] = [];
        reactor.onError = (err) => errors.push(err);
        for (let round = 0; round < 30; round++) {
          const [a, b] = socketPair();
          reactor.add(a, EVENT_READ, () => binding.recv(a, sink));
          // Let the wait start with a in it, then take a away as an application does: remove, close.
          await new Promise((r) => setImmediate(r));
          reactor.remove(a);
          closeAll(a, b);
        }
        const [c, d] = socketPair();
        const got = await new Promise<number>((resolve) => {
          reactor.add(c, EVENT_READ, () => resolve(binding.recv(c, sink)));
          binding.send(d, byte);
        });
        reactor.close();
        closeAll(c, d);
        assert.equal(got, 1);
        // select's wait on a snapshot that still held the closed descriptor fails with EBADF: the
        // snapshot was stale, not the reactor's interest set.
        assert.deepEqual(errors, []);
      });

      it('reactor timers fire without any I/O', async () => {
        const reactor = attached(new Reactor(makeSelector(variant)));
        await new Promise<void>((resolve) => reactor.setTimeout(resolve, 5));
        reactor.close();
      });

      it('timers fire in deadline order, a cleared one never, an earlier one added later first, intervals repeat', async () => {
        const reactor = attached(new Reactor(makeSelector(variant)));
        const fired: string[] = [];
        await new Promise<void>((resolve) => {
          reactor.setTimeout(() => fired.push('late'), 40);
          const cleared = reactor.setTimeout(() => fired.push('never'), 20);
          reactor.clearTimer(cleared);
          // Added after a later one is armed: the wait must be shortened for it.
          reactor.setTimeout(() => fired.push('early'), 5);
          let ticks = 0;
          const interval = reactor.setInterval(() => {
            fired.push('tick');
            if (++ticks === 3) reactor.clearTimer(interval);
          }, 15);
          reactor.setTimeout(resolve, 70);
        });
        reactor.close();
        assert.deepEqual(fired.filter((f) => f !== 'tick'), ['early', 'late']);
        assert.equal(fired.filter((f) => f === 'tick').length, 3);
      });

      it('process.nextTick and promise jobs queued by a handler run right after it, before the loop moves on', async () => {
        const reactor = attached(new Reactor(makeSelector(variant)));
        const [a, b] = socketPair();
        const order: string[] = [];
        await new Promise<void>((resolve) => {
          reactor.add(a, EVENT_READ, () => {
            binding.recv(a, sink);
            setImmediate(() => {
              order.push('immediate');
              resolve();
            });
            process.nextTick(() => order.push('tick'));
            void Promise.resolve().then(() => order.push('promise'));
          });
          binding.send(b, byte);
        });
        reactor.close();
        closeAll(a, b);
        assert.deepEqual(order, ['tick', 'promise', 'immediate']);
      });

      it('after detach() and attach() in one tick, a wake-up the old attachment had queued is ignored', async () => {
        // In a child whose Node-API callbacks may not swallow exceptions (Node 20 only warns of
        // them, DEP0168, unless this flag is given): a stale wake-up that re-armed the new
        // attachment would throw ERR_INVALID_STATE out of it, uncaught.
        const result = await runNode(`
          const { Reactor } = require('./dist/lib/reactor');
          const { createSelector, EVENT_READ } = require('./dist/lib/selectors');
          const { binding } = require('./dist/lib/native');
          const { socketPair } = require('./dist/test/fixtures');
          const [a, b] = socketPair();
          const sink = Buffer.alloc(16);
          const reactor = new Reactor(createSelector('${variant.mechanism}', ${JSON.stringify(variant.options)}));
          let reads = 0;
          reactor.add(a, EVENT_READ, () => {
            while (binding.recv(a, sink) > 0) reads++;
          });
          reactor.onError = (err) => console.log('onError: ' + err.message);
          reactor.attach({ via: '${variant.via}' });
          const spin = new Int32Array(new SharedArrayBuffer(4));
          (async () => {
            for (let round = 0; round < 20; round++) {
              // The wait in flight ends (a is readable); give it time to queue its wake-up, then swap.
              binding.send(b, Buffer.from('x'));
              Atomics.wait(spin, 0, 0, 5);
              reactor.detach();
              reactor.attach({ via: '${variant.via}' });
              await new Promise((r) => setTimeout(r, 5));
            }
            // The last attachment serves, and sees a timer added while it waits.
            await new Promise((resolve) => reactor.setTimeout(resolve, 5));
            const before = reads;
            binding.send(b, Buffer.from('x'));
            while (reads === before) await new Promise((r) => setTimeout(r, 1));
            console.log('served');
            reactor.close();
            binding.close(a);
            binding.close(b);
          })();`, { args: ['--force-node-api-uncaught-exceptions-policy=true'], timeoutMs: 10000 });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout.trim(), 'served');
      });

      it('idle: does not wake up at all (no polling loop)', async () => {
        const reactor = new Reactor(makeSelector(variant));
        const [a, b] = socketPair();
        reactor.add(a, EVENT_READ, () => binding.recv(a, sink));
        attached(reactor);
        // Counted, not timed: CPU time would measure the machine's load as much as the reactor.
        const before = reactor.stats.wakeups;
        await new Promise((r) => setTimeout(r, 300));
        const idleWakeups = reactor.stats.wakeups - before;
        binding.send(b, byte); // ...and is still awake for work.
        while (reactor.stats.events === 0) await new Promise((r) => setImmediate(r));
        reactor.close();
        closeAll(a, b);
        assert.equal(idleWakeups, 0, 'an idle attached reactor must not turn');
      });
    });
  }

  describe('attach routes', () => {
    it('an epoll or io_uring reactor attaches via uv-poll where the addon has it, every other one via wait-thread', function () {
      for (const variant of selectorVariants()) {
        const reactor = new Reactor(makeSelector(variant));
        try {
          assert.equal(reactor.attachedVia, null);
          reactor.attach();
          const pollable = variant.mechanism === 'epoll' || variant.mechanism === 'io_uring';
          const expected = pollable && binding.LoopWatcher ? 'uv-poll' : 'wait-thread';
          assert.equal(reactor.attachedVia, expected, variant.name);
          reactor.detach();
          assert.equal(reactor.attachedVia, null);
        } finally {
          reactor.close();
        }
      }
    });

    it('a route the reactor cannot take, or no route at all, is refused with ERR_INVALID_ARG_VALUE; a second attach by another route with ERR_INVALID_STATE', () => {
      const poll = new Reactor(makeSelector(selectorVariants()[0]));
      try {
        assert.throws(() => poll.attach({ via: 'uv-poll' }), { code: 'ERR_INVALID_ARG_VALUE', message: /cannot attach via 'uv-poll'/ });
        assert.throws(() => poll.attach({ via: 'kqueue' as never }), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
        assert.equal(poll.isAttached, false);
        poll.attach({ via: 'wait-thread' });
        assert.equal(poll.attach(), poll, 'attach() again is a no-op');
        assert.equal(poll.attach({ via: 'wait-thread' }), poll);
      } finally {
        poll.close();
      }
      if (!binding.LoopWatcher || !binding.epoll_wait) return;
      const epoll = new Reactor(makeSelector({ name: 'epoll', mechanism: 'epoll', options: {} })).attach();
      try {
        assert.throws(() => epoll.attach({ via: 'wait-thread' }), { code: 'ERR_INVALID_STATE' });
        assert.equal(epoll.attachedVia, 'uv-poll');
      } finally {
        epoll.close();
      }
    });
  });

  describe('attached: a handler\'s error becomes an uncaught exception (in a child process)', () => {
    for (const variant of selectorVariants()) {
      it(`${variant.name}: raised after the turn (the batch and the due timer done), and the reactor keeps serving`, async () => {
        const result = await runNode(`
          const { Reactor } = require('./dist/lib/reactor');
          const { createSelector, EVENT_READ } = require('./dist/lib/selectors');
          const { binding } = require('./dist/lib/native');
          const { socketPair } = require('./dist/test/fixtures');
          const sink = Buffer.alloc(64);
          const [a1, b1] = socketPair();
          const [a2, b2] = socketPair();
          const r = new Reactor(createSelector('${variant.mechanism}', ${JSON.stringify(variant.options)}));
          const calls = [];
          let timer = false;
          const handler = (events, fd) => {
            binding.recv(fd, sink);
            calls.push(fd);
            if (calls.length === 1) throw new Error('boom');
            if (calls.length === 3) {
              console.log('served again');
              r.close();
              [a1, b1, a2, b2].forEach(binding.close);
            }
          };
          r.add(a1, EVENT_READ, handler);
          r.add(a2, EVENT_READ, handler);
          r.setTimeout(() => { timer = true; }, 0);
          binding.send(b1, Buffer.from('x'));
          binding.send(b2, Buffer.from('x'));
          process.on('uncaughtException', (err) => {
            console.log(JSON.stringify({ message: err.message, calls: calls.length, timer }));
            binding.send(b1, Buffer.from('y'));
          });
          r.attach();`, { timeoutMs: 10000 });
        assert.equal(result.code, 0, result.stderr);
        assert.deepEqual(result.stdout.trim().split('\n'), [JSON.stringify({ message: 'boom', calls: 2, timer: true }), 'served again']);
      });
    }
  });

  describe('process lifetime (attached mode)', () => {
    const prelude = `const { Reactor } = require('./dist/lib/reactor');
      const { createSelector, EVENT_READ } = require('./dist/lib/selectors');
      const { binding, constants } = require('./dist/lib/native');
      const { socketPair } = require('./dist/test/fixtures');`;

    for (const variant of attachVariants().filter((v) => !v.options.edgeTriggered)) {
      const { mechanism, via } = variant;
      it(`${variant.name}: a process whose only attached reactor was unref'd exits by itself`, async () => {
        const result = await runNode(`${prelude}
          const [a, b] = socketPair();
          const r = new Reactor(createSelector('${mechanism}'));
          r.add(a, EVENT_READ, () => {});
          r.attach({ via: '${via}' }).unref();
          process.on('exit', () => console.log('exited'));`, { timeoutMs: 10000 });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout.trim(), 'exited');
      });

      it(`${variant.name}: a referenced attached reactor keeps the process alive`, async () => {
        const result = await runNode(`${prelude}
          const [a, b] = socketPair();
          const r = new Reactor(createSelector('${mechanism}'));
          r.add(a, EVENT_READ, () => {});
          r.attach({ via: '${via}' });
          // This timer does not hold the process: only the reactor can keep it alive to fire.
          setTimeout(() => { console.log('still alive'); r.close(); }, 300).unref();`, { timeoutMs: 10000 });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout.trim(), 'still alive');
      });

      it(`${variant.name}: an unref'd reactor's pending timer does not hold the process either; ref() again does`, async () => {
        const result = await runNode(`${prelude}
          const r = new Reactor(createSelector('${mechanism}'));
          r.attach({ via: '${via}' }).unref();
          r.setTimeout(() => console.log('never'), 60000);
          const held = new Reactor(createSelector('${mechanism}'));
          held.attach({ via: '${via}' }).unref().ref();
          held.setTimeout(() => { console.log('held'); held.close(); }, 50);
          process.on('exit', () => console.log('exited'));`, { timeoutMs: 10000 });
        assert.equal(result.code, 0, result.stderr);
        assert.deepEqual(result.stdout.trim().split('\n'), ['held', 'exited']);
      });

      it(`${variant.name}: a handler that throws reaches 'uncaughtException', and the reactor goes on serving`, async () => {
        const result = await runNode(`${prelude}
          const [a, b] = socketPair();
          const sink = Buffer.alloc(16);
          const r = new Reactor(createSelector('${mechanism}'));
          let calls = 0;
          r.add(a, EVENT_READ, () => {
            binding.recv(a, sink);
            if (++calls === 1) throw new Error('from a handler');
            console.log('served again');
            r.close();
          });
          r.attach({ via: '${via}' });
          process.on('uncaughtException', (err) => {
            console.log('uncaught: ' + err.message);
            binding.send(b, Buffer.from('y'));
          });
          binding.send(b, Buffer.from('x'));`, { timeoutMs: 10000 });
        assert.equal(result.code, 0, result.stderr);
        assert.deepEqual(result.stdout.trim().split('\n'), ['uncaught: from a handler', 'served again']);
      });

      it(`${variant.name}: a worker thread that ends with its reactor still attached ends cleanly`, async () => {
        const result = await runNode(`
          const { Worker } = require('node:worker_threads');
          const worker = new Worker(\`
            const { parentPort } = require('node:worker_threads');
            const { Reactor } = require('./dist/lib/reactor');
            const { createSelector, EVENT_READ } = require('./dist/lib/selectors');
            const { socketPair } = require('./dist/test/fixtures');
            const [a] = socketPair();
            const r = new Reactor(createSelector('${mechanism}'));
            r.add(a, EVENT_READ, () => {});
            r.setTimeout(() => {}, 60000);
            r.attach({ via: '${via}' });
            parentPort.postMessage(r.attachedVia);
          \`, { eval: true });
          worker.on('message', (via) => { console.log('attached via ' + via); void worker.terminate(); });
          worker.on('exit', (code) => console.log('worker exited ' + code));`, { timeoutMs: 10000 });
        assert.equal(result.code, 0, `${result.signal ?? ''} ${result.stderr}`);
        assert.deepEqual(result.stdout.trim().split('\n'), [`attached via ${via}`, 'worker exited 1']);
      });
    }
  });
});

describe('reactor: run() ends when nothing is left', () => {
  it('a cleared timer does not keep run() waiting, and no descriptor means no wait at all', () => {
    const reactor = new Reactor();
    const [a, b] = socketPair();
    const far = reactor.setTimeout(() => assert.fail('a cleared timer fired'), 60_000);
    reactor.add(a, EVENT_READ, () => {
      binding.recv(a, sink);
      reactor.remove(a);
      reactor.clearTimer(far);
    });
    binding.send(b, byte);
    const start = Date.now();
    reactor.run();
    reactor.close();
    closeAll(a, b);
    // Had the cleared timer counted, run() would have slept for its whole minute.
    assert.ok(Date.now() - start < 30_000);
  });
});

describe('reactor: attach() that cannot arm leaves nothing behind', () => {
  it('select with every descriptor below FD_SETSIZE taken: attach() throws RangeError and stays detached', function () {
    skipUnless(this, binding.platform !== 'win32', "the limit is on descriptor values on POSIX only; Windows' fd_set limits how many sockets");
    const before = openKernelObjects();
    const held: number[] = [];
    const reactor = new Reactor(makeSelector({ name: 'select', mechanism: 'select', options: {} }));
    try {
      // Fill every free number below FD_SETSIZE, so the helper's wake-up descriptor lands above it.
      while (held.length === 0 || Math.max(...held.slice(-2)) < constants.FD_SETSIZE) held.push(...socketPair());
      assert.throws(() => reactor.attach(), RangeError);
      assert.equal(reactor.isAttached, false);
    } finally {
      reactor.close();
      closeAll(...held);
    }
    assert.deepEqual(leakedSince(before), [], 'the helper thread\'s wake-up descriptor must be closed');
  });
});
