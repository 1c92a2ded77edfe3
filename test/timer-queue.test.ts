/**
 * The reactor's timer queue on its own, with an injected clock (`now`), so each promise is exact:
 * firing order, late intervals, cancelled timers leaving the heap, reschedule.
 */
import * as assert from 'node:assert/strict';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import fc from 'fast-check';
import { Timer, TimerQueue } from '../lib/timer-queue';

/** V8's collector, reachable once the flag is set (a context made afterwards gets `gc`). */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

describe('timer queue', () => {
  it('runs due timers in deadline order, ties in the order they were added', () => {
    const queue = new TimerQueue();
    const fired: string[] = [];
    queue.add(30, () => fired.push('c'), 0, 0);
    queue.add(10, () => fired.push('a1'), 0, 0);
    queue.add(10, () => fired.push('a2'), 0, 0);
    queue.add(20, () => fired.push('b'), 0, 0);
    assert.equal(queue.runDue(9), 0);
    assert.equal(queue.runDue(20), 3);
    assert.deepEqual(fired, ['a1', 'a2', 'b']);
    assert.equal(queue.nextTimeout(20), 10);
  });

  it('a late interval fires once, then is next due one period after now (missed periods are skipped)', () => {
    const queue = new TimerQueue();
    let ticks = 0;
    const timer = queue.add(10, () => ticks++, 10, 0);
    // Due at 10, 20 and 30 by now: a loop stalled until 35 gets one tick, not a burst.
    assert.equal(queue.runDue(35), 1);
    assert.equal(ticks, 1);
    assert.equal(timer.deadline, 45);
    assert.equal(queue.nextTimeout(35), 10);
    assert.equal(queue.runDue(35), 0);
  });

  it('an interval on time keeps its cadence (next deadline = last deadline + period, no drift)', () => {
    const queue = new TimerQueue();
    const timer = queue.add(10, () => undefined, 10, 0);
    queue.runDue(12); // Two milliseconds late: still within the period.
    assert.equal(timer.deadline, 20);
    queue.runDue(20);
    assert.equal(timer.deadline, 30);
  });

  it('cancel() takes the timer out at once: 100,000 cancelled timers behind a live one are not retained', async () => {
    const queue = new TimerQueue();
    const live = queue.add(1, () => undefined, 0, 0);
    const watched: WeakRef<Timer>[] = [];
    (() => {
      for (let i = 0; i < 100_000; i++) {
        const timer = queue.add(1000 + i, () => undefined, 0, 0);
        if (i % 100 === 0) watched.push(new WeakRef(timer));
        queue.cancel(timer);
        assert.equal(timer.active, false);
      }
    })();
    assert.equal(queue.size, 1);
    assert.equal(queue.nextTimeout(0), 1);
    // A WeakRef holds its target until the current job ends.
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
    const retained = watched.filter((ref) => ref.deref() !== undefined).length;
    assert.equal(retained, 0, `${retained} of ${watched.length} cancelled timers are still held (by the heap)`);
    assert.equal(live.active, true);
  });

  it('cancel() ignores a timer that fired, was cleared, belongs to another queue, or is not a timer', () => {
    const queue = new TimerQueue();
    const other = new TimerQueue();
    const foreign = other.add(5, () => undefined, 0, 0);
    const fired = queue.add(0, () => undefined, 0, 0);
    const kept = queue.add(10, () => undefined, 0, 0);
    queue.runDue(0);
    queue.cancel(fired);
    queue.cancel(kept);
    queue.cancel(kept);
    queue.cancel(foreign);
    queue.cancel(undefined as unknown as Timer);
    assert.equal(queue.size, 0);
    assert.equal(other.size, 1);
    assert.equal(foreign.active, true);
  });

  it('reschedule() moves a pending timer either way, and revives one that fired or was cleared', () => {
    const queue = new TimerQueue();
    const fired: string[] = [];
    const a = queue.add(10, () => fired.push('a'), 0, 0);
    const b = queue.add(20, () => fired.push('b'), 0, 0);
    queue.reschedule(a, 30, 0); // Later than b now.
    queue.runDue(25);
    assert.deepEqual(fired, ['b']);
    queue.reschedule(b, 1, 25); // b fired: pending again, and earlier than a.
    assert.equal(b.active, true);
    assert.equal(queue.size, 2);
    queue.runDue(30);
    assert.deepEqual(fired, ['b', 'b', 'a']);
    queue.reschedule(a, 5, 30);
    queue.cancel(a);
    queue.reschedule(a, 5, 30);
    queue.runDue(35);
    assert.deepEqual(fired, ['b', 'b', 'a', 'a']);
  });

  it('reschedule() refuses a timer of another queue with a TypeError', () => {
    const foreign = new TimerQueue().add(5, () => undefined);
    assert.throws(() => new TimerQueue().reschedule(foreign, 1), TypeError);
  });

  it('a callback that throws does not stop the other due timers: with `failures`, its error is collected', () => {
    const queue = new TimerQueue();
    const fired: string[] = [];
    const boom = new Error('boom');
    queue.add(1, () => {
      fired.push('first');
      throw boom;
    }, 0, 0);
    queue.add(2, () => fired.push('second'), 0, 0);
    const failures: unknown[] = [];
    assert.equal(queue.runDue(5, failures), 2);
    assert.deepEqual(fired, ['first', 'second']);
    assert.deepEqual(failures, [boom]);
    assert.equal(queue.size, 0);
  });

  it('without `failures`, a throwing callback propagates and the queue stays consistent', () => {
    const queue = new TimerQueue();
    const fired: string[] = [];
    const interval = queue.add(1, () => {
      fired.push('interval');
      throw new Error('boom');
    }, 10, 0);
    queue.add(2, () => fired.push('second'), 0, 0);
    assert.throws(() => queue.runDue(5), /boom/);
    // The interval was rescheduled before its callback ran; the other timer is still due.
    assert.equal(interval.deadline, 11);
    assert.equal(queue.runDue(5), 1);
    assert.deepEqual(fired, ['interval', 'second']);
  });

  it('agrees with a sorted-list model under any mix of add, cancel, reschedule and runDue', () => {
    type Op =
      | { kind: 'add'; delay: number; interval: number }
      | { kind: 'cancel'; pick: number }
      | { kind: 'reschedule'; pick: number; delay: number }
      | { kind: 'run'; advance: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), delay: fc.integer({ min: 0, max: 50 }), interval: fc.constantFrom(0, 0, 7) }),
      fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('reschedule' as const), pick: fc.nat(), delay: fc.integer({ min: 0, max: 50 }) }),
      fc.record({ kind: fc.constant('run' as const), advance: fc.integer({ min: 0, max: 30 }) }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const queue = new TimerQueue();
      const timers: Timer[] = [];
      // The model: pending ids with (deadline, order of scheduling); the lowest pair fires first.
      const model = new Map<number, { deadline: number; order: number; interval: number }>();
      let order = 0;
      let now = 0;
      const fired: number[] = [];
      for (const o of ops) {
        if (o.kind === 'add') {
          const id = timers.length;
          timers.push(queue.add(o.delay, () => fired.push(id), o.interval, now));
          model.set(id, { deadline: now + o.delay, order: order++, interval: o.interval });
        } else if (o.kind === 'cancel' && timers.length > 0) {
          const id = o.pick % timers.length;
          queue.cancel(timers[id]);
          model.delete(id);
        } else if (o.kind === 'reschedule' && timers.length > 0) {
          const id = o.pick % timers.length;
          queue.reschedule(timers[id], o.delay, now);
          model.set(id, { deadline: now + o.delay, order: order++, interval: timers[id].interval });
        } else if (o.kind === 'run') {
          now += o.advance;
          const expected: number[] = [];
          for (;;) {
            let next: number | undefined;
            for (const [id, t] of model) {
              const best = next === undefined ? undefined : model.get(next)!;
              if (t.deadline <= now && (best === undefined || t.deadline < best.deadline || (t.deadline === best.deadline && t.order < best.order))) next = id;
            }
            if (next === undefined) break;
            expected.push(next);
            const t = model.get(next)!;
            if (t.interval > 0) {
              const again = t.deadline + t.interval;
              model.set(next, { deadline: again > now ? again : now + t.interval, order: order++, interval: t.interval });
            } else {
              model.delete(next);
            }
          }
          fired.length = 0;
          assert.equal(queue.runDue(now), expected.length);
          assert.deepEqual(fired, expected);
        }
        assert.equal(queue.size, model.size);
        for (const [id, timer] of timers.entries()) assert.equal(timer.active, model.has(id));
      }
    }), { numRuns: 300 });
  });
});
