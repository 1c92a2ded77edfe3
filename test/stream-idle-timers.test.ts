/**
 * Idle timeouts cost O(1) per refresh: one list per duration, ordered by last activity, and one
 * reactor timer per list. Refreshing thousands of connections on every message never grows the
 * reactor's timer heap; entries expire in order of their last activity, each once.
 */
import * as assert from 'node:assert/strict';
import { Reactor } from '../lib/reactor';
import { IdleEntry, IdleTimers } from '../lib/stream/idle-timers';

describe('stream: idle timers', () => {
  it('100,000 refreshes of 1,000 entries keep one reactor timer per duration, never more', () => {
    const reactor = new Reactor();
    const timers = new IdleTimers(reactor);
    const entries = Array.from({ length: 1000 }, () => new IdleEntry(() => assert.fail('nothing is idle yet')));
    for (const entry of entries) timers.track(entry, 60_000);
    const other = new IdleEntry(() => undefined);
    timers.track(other, 30_000);
    assert.equal(reactor.pendingTimers, 2, 'one timer per duration');
    for (let round = 0; round < 100; round++) {
      for (const entry of entries) timers.refresh(entry);
      assert.equal(reactor.pendingTimers, 2);
    }
    for (const entry of entries) timers.untrack(entry);
    assert.equal(reactor.pendingTimers, 1, 'an emptied list takes its timer away');
    timers.untrack(other);
    assert.equal(reactor.pendingTimers, 0);
    reactor.close();
  });

  it('an emptied duration list goes away with its timer, also when its last entry expires', () => {
    const reactor = new Reactor();
    const timers = new IdleTimers(reactor);
    for (let ms = 1000; ms < 1100; ms++) {
      const entry = new IdleEntry(() => undefined);
      timers.track(entry, ms);
      timers.untrack(entry);
    }
    assert.equal(timers.listCount, 0, 'a hundred durations used once leave no list behind');
    assert.equal(reactor.pendingTimers, 0);
    let fired = 0;
    timers.track(new IdleEntry(() => fired++), 1);
    while (fired === 0) reactor.runOnce(1000); // The list's own reactor timer does the waiting.
    assert.equal(fired, 1);
    assert.equal(timers.listCount, 0);
    reactor.close();
  });

  it('expires entries in order of last activity, each once; a refreshed one later', () => {
    const reactor = new Reactor();
    const timers = new IdleTimers(reactor);
    const expired: string[] = [];
    const make = (name: string): IdleEntry => new IdleEntry(() => expired.push(name));
    const [a, b, c] = [make('a'), make('b'), make('c')];
    timers.track(a, 30);
    timers.track(b, 30);
    timers.track(c, 30);
    timers.refresh(a); // a is now the most recently active: it goes last.
    reactor.run(); // Returns once nothing is left: every entry expired and no timer remains.
    assert.deepEqual(expired, ['b', 'c', 'a']);
    assert.equal(reactor.pendingTimers, 0);
    reactor.close();
  });

  it('an entry re-tracked from its own onIdle starts a new period and fires again', () => {
    const reactor = new Reactor();
    const timers = new IdleTimers(reactor);
    let fired = 0;
    const entry: IdleEntry = new IdleEntry(() => {
      if (++fired < 3) timers.track(entry, 5);
    });
    timers.track(entry, 5);
    reactor.run();
    assert.equal(fired, 3);
    reactor.close();
  });
});
