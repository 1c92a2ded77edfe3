/** The reactor: dispatch, timers, stale events, and both run modes. */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { binding, constants, WaitMechanism } from '../lib/native';
import { PollFdArray } from '../lib/pollfds';
import { Reactor } from '../lib/reactor';
import { EVENT_READ } from '../lib/selectors/selector';
import { closeAll, makeSelector, selectorVariants, socketPair } from './fixtures';
import { leakedSince, openKernelObjects } from './helpers';

const byte = Buffer.from('x');
const sink = Buffer.alloc(1024);

function runNode(script: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', script], { timeout: timeoutMs, cwd: path.resolve(__dirname, '..', '..') }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

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
      reactor.setTimeout(() => fired.push('b'), 6);
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

      it('attached: serves inside the event loop and leaves it when closed', async () => {
        const reactor = new Reactor(makeSelector(variant));
        const [a, b] = socketPair();
        const received = await new Promise<string>((resolve) => {
          reactor.add(a, EVENT_READ, () => {
            const n = binding.recv(a, sink);
            resolve(sink.toString('utf8', 0, n));
          });
          reactor.attach();
          // Sent from a later turn of Node's loop, while the helper thread waits.
          setTimeout(() => binding.send(b, Buffer.from('hello')), 10);
        });
        reactor.close();
        closeAll(a, b);
        assert.equal(received, 'hello');
      });

      it('attached: sees a descriptor added outside dispatch while a wait is in flight', async () => {
        const reactor = new Reactor(makeSelector(variant)).attach();
        const [a, b] = socketPair();
        // Let the helper thread arm on an empty interest set first.
        await new Promise((r) => setTimeout(r, 20));
        const got = await new Promise<number>((resolve) => {
          reactor.add(a, EVENT_READ, () => resolve(binding.recv(a, sink)));
          binding.send(b, byte);
        });
        reactor.close();
        closeAll(a, b);
        assert.equal(got, 1);
      });

      it('attached: reactor timers fire without any I/O', async () => {
        const reactor = new Reactor(makeSelector(variant)).attach();
        await new Promise<void>((resolve) => reactor.setTimeout(resolve, 5));
        reactor.close();
      });

      it('attached and idle: uses almost no CPU (no polling loop)', async () => {
        const reactor = new Reactor(makeSelector(variant));
        const [a, b] = socketPair();
        reactor.add(a, EVENT_READ, () => binding.recv(a, sink));
        reactor.attach();
        const start = process.cpuUsage();
        await new Promise((r) => setTimeout(r, 1000));
        const used = process.cpuUsage(start);
        reactor.close();
        closeAll(a, b);
        // A polling loop would burn most of the second; a blocked helper thread burns ~nothing.
        assert.ok(used.user + used.system < 150_000, `idle second used ${(used.user + used.system) / 1000} ms of CPU`);
      });
    });
  }

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
          r.attach();`, 10000);
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

    for (const mechanism of selectorVariants().map((v) => v.mechanism).filter((m, i, all) => all.indexOf(m) === i)) {
      it(`${mechanism}: a process whose only attached reactor was unref'd exits by itself`, async () => {
        const result = await runNode(`${prelude}
          const [a, b] = socketPair();
          const r = new Reactor(createSelector('${mechanism}'));
          r.add(a, EVENT_READ, () => {});
          r.attach().unref();
          process.on('exit', () => console.log('exited'));`, 10000);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout.trim(), 'exited');
      });

      it(`${mechanism}: a referenced attached reactor keeps the process alive`, async () => {
        const result = await runNode(`${prelude}
          const [a, b] = socketPair();
          const r = new Reactor(createSelector('${mechanism}'));
          r.add(a, EVENT_READ, () => {});
          r.attach();
          // This timer does not hold the process: only the reactor can keep it alive to fire.
          setTimeout(() => { console.log('still alive'); r.close(); }, 300).unref();`, 10000);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout.trim(), 'still alive');
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

describe('WaitThread (the attached mode\'s helper thread)', () => {
  it('refuses a second wait in flight and any use after close with ERR_INVALID_STATE', () => {
    const thread = new binding.WaitThread(() => undefined);
    const memory = new Int32Array(4);
    try {
      thread.arm(WaitMechanism.Poll, memory, 0, -1, 60_000);
      assert.throws(() => thread.arm(WaitMechanism.Poll, memory, 0, -1, 60_000), { code: 'ERR_INVALID_STATE' });
    } finally {
      thread.close();
    }
    thread.close(); // Idempotent.
    assert.throws(() => thread.arm(WaitMechanism.Poll, memory, 0, -1, 0), { code: 'ERR_INVALID_STATE' });
  });
});

describe('WaitThread and FD_SETSIZE', () => {
  it('a select wait refuses a descriptor >= FD_SETSIZE with a RangeError instead of overrunning the fd_set', function () {
    // Windows' fd_set limits how many sockets, not their values.
    if (binding.platform === 'win32') this.skip();
    const thread = new binding.WaitThread(() => undefined);
    const entries = new PollFdArray(1);
    entries.push(constants.FD_SETSIZE + 5, constants.POLLIN);
    try {
      assert.throws(() => thread.arm(WaitMechanism.Select, entries.buffer, 1, -1, 0), RangeError);
      // Nothing is in flight after the refusal: a valid wait can be armed.
      entries.set(0, -1, constants.POLLIN);
      assert.doesNotThrow(() => thread.arm(WaitMechanism.Select, entries.buffer, 1, -1, 0));
    } finally {
      thread.close();
    }
  });
});

describe('reactor: attach() that cannot arm leaves nothing behind', () => {
  it('select with every descriptor below FD_SETSIZE taken: attach() throws RangeError and stays detached', function () {
    // The limit is on descriptor values on POSIX only; Windows' fd_set limits how many sockets.
    if (binding.platform === 'win32') this.skip();
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

describe('reactor: errors of timer callbacks, several errors in one turn', () => {
  it('a timer callback that throws: the other due timers still run, then onError gets the error', () => {
    const reactor = new Reactor();
    const fired: string[] = [];
    const boom = new Error('boom');
    reactor.setTimeout(() => {
      fired.push('first');
      throw boom;
    }, 0);
    reactor.setTimeout(() => fired.push('second'), 0);
    reactor.onError = (err) => fired.push(err === boom ? 'onError(boom)' : 'onError(?)');
    reactor.run();
    reactor.close();
    assert.deepEqual(fired, ['first', 'second', 'onError(boom)']);
  });

  it('each error of a turn reaches onError in order; when onError throws for several, the turn throws an AggregateError of them', () => {
    const reactor = new Reactor();
    const [a, b] = socketPair();
    const handlerError = new Error('from the handler');
    const timerError = new Error('from the timer');
    reactor.add(a, EVENT_READ, () => {
      binding.recv(a, sink);
      throw handlerError;
    });
    // Due by the time the wait returns, so in the same turn as the descriptor.
    reactor.setTimeout(() => {
      throw timerError;
    }, 0);
    binding.send(b, byte);
    const seen: unknown[] = [];
    reactor.onError = (err) => {
      seen.push(err);
      throw err;
    };
    assert.throws(() => reactor.runOnce(1000), (err) => {
      assert.ok(err instanceof AggregateError);
      assert.deepEqual(err.errors, [handlerError, timerError]);
      return true;
    });
    reactor.close();
    closeAll(a, b);
    // Dispatch comes before the timers.
    assert.deepEqual(seen, [handlerError, timerError]);
  });

  it('an onError that does not throw keeps run() turning', () => {
    const reactor = new Reactor();
    let ticks = 0;
    const errors: unknown[] = [];
    reactor.onError = (err) => errors.push(err);
    const interval = reactor.setInterval(() => {
      if (++ticks === 3) reactor.clearTimer(interval);
      throw new Error(`tick ${ticks}`);
    }, 1);
    reactor.run();
    reactor.close();
    assert.deepEqual(errors.map((e) => (e as Error).message), ['tick 1', 'tick 2', 'tick 3']);
  });
});

describe('reactor: the clock (reactor.now)', () => {
  it('is read once per turn, after the wait: every handler and timer of the turn sees that same value', () => {
    const reactor = new Reactor();
    const [a1, b1] = socketPair();
    const [a2, b2] = socketPair();
    const stamps: number[] = [];
    const stamp = (fd: number) => (): void => {
      binding.recv(fd, sink);
      stamps.push(reactor.now);
    };
    reactor.add(a1, EVENT_READ, stamp(a1));
    reactor.add(a2, EVENT_READ, stamp(a2));
    binding.send(b1, byte);
    binding.send(b2, byte);
    // Both ready before the wait: one turn reports both.
    const before = performance.now();
    reactor.setTimeout(() => stamps.push(reactor.now), 0);
    assert.equal(reactor.runOnce(1000), 2);
    const after = performance.now();
    reactor.close();
    closeAll(a1, b1, a2, b2);
    assert.equal(stamps.length, 3);
    assert.ok(stamps.every((t) => t === stamps[0]), `one value per turn: ${stamps.join(', ')}`);
    assert.ok(stamps[0] >= before && stamps[0] <= after);
  });

  it('costs one clock read per turn when no timer is pending, two when one is (to size the wait)', () => {
    const reactor = new Reactor();
    const [a, b] = socketPair();
    reactor.add(a, EVENT_READ, () => binding.recv(a, sink));
    const clock = performance.now;
    let reads = 0;
    performance.now = function now(this: typeof performance): number {
      reads++;
      return clock.call(this);
    };
    try {
      binding.send(b, byte);
      reactor.runOnce(1000);
      assert.equal(reads, 1, 'no timer');
      reactor.setTimeout(() => undefined, 60_000);
      reads = 0;
      binding.send(b, byte);
      reactor.runOnce(1000);
      assert.equal(reads, 2, 'a timer pending');
      reads = 0;
      binding.send(b, byte);
      reactor.runOnce(0);
      assert.equal(reads, 1, 'a timer pending, but a wait that cannot block');
    } finally {
      delete (performance as { now?: unknown }).now;
      reactor.close();
      closeAll(a, b);
    }
    assert.equal(performance.now, clock);
  });

  it('moves forward from turn to turn', () => {
    const reactor = new Reactor();
    const start = reactor.now;
    reactor.runOnce(2);
    const first = reactor.now;
    reactor.runOnce(2);
    reactor.close();
    assert.ok(first >= start + 2 * 0.95 && reactor.now >= first + 2 * 0.95, `${start} ${first} ${reactor.now}`);
  });
});

describe('reactor: rescheduleTimer()', () => {
  it('moves a pending timer and revives one that fired, firing each time at most once per deadline', () => {
    const reactor = new Reactor();
    const fired: string[] = [];
    const far = reactor.setTimeout(() => fired.push('far'), 60_000);
    const near = reactor.setTimeout(() => fired.push('near'), 0);
    reactor.rescheduleTimer(far, 0);
    reactor.run();
    assert.deepEqual(fired.sort(), ['far', 'near']);
    reactor.rescheduleTimer(near, 0);
    reactor.run();
    reactor.close();
    assert.deepEqual(fired.sort(), ['far', 'near', 'near']);
  });

  it('attached: moving a timer earlier wakes the helper thread', async () => {
    const reactor = new Reactor().attach();
    // Let the helper thread arm on the minute-long deadline first.
    const timer = reactor.setTimeout(() => undefined, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise<void>((resolve) => {
      const fire = reactor.setTimeout(resolve, 60_000);
      reactor.clearTimer(timer);
      reactor.rescheduleTimer(fire, 0);
    });
    reactor.close();
  });
});

describe('reactor: after close()', () => {
  it('has() answers false (cleanup code may run after the reactor closed), while add/remove throw', () => {
    const reactor = new Reactor();
    const [a, b] = socketPair();
    reactor.add(a, EVENT_READ, () => undefined);
    reactor.close();
    closeAll(a, b);
    assert.equal(reactor.has(a), false);
    assert.throws(() => reactor.remove(a), /closed/);
    assert.throws(() => reactor.add(a, EVENT_READ, () => undefined), /closed/);
  });
});

describe('reactor: Symbol.dispose', () => {
  it('a \'using\' declaration closes the reactor and its selector at the end of the block', () => {
    let outer: Reactor;
    {
      using reactor = new Reactor();
      outer = reactor;
      assert.equal(reactor.selector.closed, false);
    }
    assert.equal(outer.selector.closed, true);
  });
});
