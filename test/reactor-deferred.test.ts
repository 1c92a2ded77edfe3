/**
 * The reactor's deferred queue (reactor.defer): how the stream layer reports from the reactor's
 * turn instead of inside the caller's call. A callback deferred while the reactor sleeps in a wait
 * runs promptly — blocking run() does not wait with work queued, and an attached reactor is woken on
 * every route — and one that throws is reported like a handler's error. Also: a program that
 * registers descriptors and never runs or attaches its reactor is told so at exit, once; one that
 * exits on purpose is not.
 */
import * as assert from 'node:assert/strict';
import { Reactor } from '../lib/reactor';
import { Connection } from '../lib/stream/connection';
import { EVENT_READ } from '../lib/selectors/selector';
import { attachVariants, closeAll, makeSelector, selectorVariants, socketPair } from './fixtures';
import { leakedSince, openKernelObjects, runNode } from './helpers';

describe('reactor: deferred callbacks', () => {
  let before: Map<number, string>;
  beforeEach(() => {
    before = openKernelObjects();
  });
  afterEach(() => {
    assert.deepEqual(leakedSince(before), []);
  });

  for (const variant of selectorVariants()) {
    it(`${variant.name}, blocking run(): a callback deferred from a handler runs in that turn, before the next wait; one deferred from it waits for the next turn, which does not block`, () => {
      const reactor = new Reactor(makeSelector(variant));
      const [a, b] = socketPair();
      const order: string[] = [];
      // A descriptor that never becomes ready and a timer far away: only deferred work can end run().
      reactor.add(a, EVENT_READ, () => order.push('never'));
      const far = reactor.setTimeout(() => order.push('far timer'), 60_000);
      reactor.setTimeout(() => {
        order.push('timer');
        reactor.defer(() => {
          order.push('deferred');
          reactor.defer(() => {
            order.push('deferred again');
            reactor.stop();
          });
        });
      }, 0);
      reactor.run();
      assert.deepEqual(order, ['timer', 'deferred', 'deferred again']);
      assert.equal(reactor.pendingTimers, 1, 'run() returned without waiting for the far timer');
      reactor.clearTimer(far);
      reactor.close();
      closeAll(a, b);
    });
  }

  it('blocking run() returns when deferred work leaves nothing registered and no timer (it never waits on an empty set)', () => {
    const reactor = new Reactor();
    const [a, b] = socketPair();
    let ran = false;
    reactor.add(a, EVENT_READ, () => undefined);
    reactor.setTimeout(() => {
      reactor.defer(() => {
        reactor.remove(a);
        // Deferred from a deferred callback: it runs at the start of the next turn, and after it
        // nothing is left to wait for (how a Listener's shutdown delivers its done).
        reactor.defer(() => { ran = true; });
      });
    }, 0);
    reactor.run();
    assert.equal(ran, true);
    reactor.close();
    closeAll(a, b);
  });

  for (const variant of attachVariants().filter((v) => !v.options.edgeTriggered)) {
    it(`${variant.name}: a callback deferred from outside while the attached reactor sleeps runs promptly (not at its next timer)`, async () => {
      const reactor = new Reactor(makeSelector(variant));
      const [a, b] = socketPair();
      reactor.add(a, EVENT_READ, () => undefined);
      const far = reactor.setTimeout(() => undefined, 60_000);
      reactor.attach({ via: variant.via });
      await new Promise((resolve) => setImmediate(resolve)); // Let it settle into its wait.
      await new Promise<void>((resolve) => reactor.defer(resolve));
      assert.equal(reactor.pendingTimers, 1, 'the far timer has not fired: the wake-up was the deferred work');
      reactor.clearTimer(far);
      reactor.close();
      closeAll(a, b);
    });
  }

  it('a deferred callback that throws goes to onError after its turn; the others still run; close() runs what is queued', () => {
    const reactor = new Reactor();
    const errors: unknown[] = [];
    reactor.onError = (err) => errors.push(err);
    const ran: string[] = [];
    reactor.defer(() => { throw new Error('deferred boom'); });
    reactor.defer(() => ran.push('second'));
    reactor.runOnce(0);
    assert.deepEqual(ran, ['second']);
    assert.equal((errors[0] as Error).message, 'deferred boom');
    reactor.defer(() => ran.push('at close'));
    reactor.close();
    assert.deepEqual(ran, ['second', 'at close']);
    assert.throws(() => reactor.defer(42 as unknown as () => void), TypeError);
  });

  it('after close(): what is deferred runs from Node\'s loop, not inside the call; a connection destroyed after its reactor still hears onError and onClose, once', async () => {
    const reactor = new Reactor();
    const [a, b] = socketPair();
    const conn = new Connection(reactor, a);
    const heard: string[] = [];
    conn.onError = (err) => heard.push(`error: ${err.message}`);
    conn.onClose = () => heard.push('close');
    reactor.close();
    let ran = false;
    reactor.defer(() => { ran = true; });
    conn.destroy(new Error('after the reactor'));
    assert.equal(ran, false, 'not inside defer()');
    assert.deepEqual(heard, [], 'not inside destroy()');
    assert.equal(reactor.pendingDeferred, 2);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(ran, true);
    assert.deepEqual(heard, ['error: after the reactor', 'close']);
    assert.equal(reactor.pendingDeferred, 0);
    closeAll(b);
  });
});

describe('reactor: a program that forgets to run or attach its reactor', function () {
  this.timeout(20000);
  const prelude = `const { Reactor } = require('./dist/lib/reactor');
    const { Listener } = require('./dist/lib/stream');`;

  it('is told so once, on stderr, when the event loop runs dry (it "listened" and would exit 0 silently)', async () => {
    const result = await runNode(`${prelude}
      const reactor = new Reactor();
      new Listener(reactor, {}, () => {}).listen();
      new Listener(reactor, {}, () => {}).listen();
      console.log('listening');`);
    assert.equal(result.code, 0);
    assert.equal(result.stdout.trim(), 'listening');
    const warnings = result.stderr.match(/IOMUX_REACTOR_NEVER_RUN/g) ?? [];
    assert.equal(warnings.length, 1, result.stderr);
    assert.match(result.stderr, /2 registered descriptor\(s\) was never run\(\) or attach\(\)ed/);
  });

  it('is told again at a later exit about a reactor made after the first warning (the check is not spent)', async () => {
    const result = await runNode(`${prelude}
      new Listener(new Reactor(), {}, () => {}).listen();
      process.once('beforeExit', () => setTimeout(() => new Listener(new Reactor(), {}, () => {}).listen(), 0));`);
    assert.equal(result.code, 0, result.stderr);
    assert.equal((result.stderr.match(/IOMUX_REACTOR_NEVER_RUN/g) ?? []).length, 2, result.stderr);
  });

  for (const [what, body] of [
    ['runs it (blocking) and stops', 'reactor.setTimeout(() => reactor.stop(), 0); reactor.run();'],
    ['attaches it and later closes it', 'reactor.attach(); setTimeout(() => reactor.close(), 10);'],
    ['closes it unrun', 'reactor.close();'],
    ['exits on purpose with process.exit()', 'process.exit(0);'],
  ]) {
    it(`is not warned when it ${what}`, async () => {
      const result = await runNode(`${prelude}
        const reactor = new Reactor();
        new Listener(reactor, {}, () => {}).listen();
        ${body}`);
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stderr, /IOMUX_REACTOR_NEVER_RUN/);
    });
  }
});

describe('stream: Connection<T> is generic over its data', () => {
  it('types data as T (a compile-time promise; this test builds only if it holds)', () => {
    interface Session { user: string; commands: number }
    const reactor = new Reactor();
    const [a, b] = socketPair();
    const conn = new Connection<Session>(reactor, a);
    conn.data = { user: 'alice', commands: 0 };
    conn.data.commands++; // Typed: no cast.
    conn.onData = function () {
      this.data.commands++; // `this` is Connection<Session>.
    };
    assert.equal(conn.data.user, 'alice');
    conn.destroy();
    reactor.close();
    closeAll(b);
  });
});
