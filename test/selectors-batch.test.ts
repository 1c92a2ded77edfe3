/**
 * epoll's batchInterest: modify() reaches the kernel just before the next wait, not at once, and a
 * change undone before then never reaches it. What the kernel holds is read from
 * /proc/self/fdinfo/<epfd>, which lists each registered descriptor with its event mask.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { binding, constants } from '../lib/native';
import { Reactor } from '../lib/reactor';
import { EpollSelector } from '../lib/selectors/epoll';
import { EVENT_READ, EVENT_WRITE } from '../lib/selectors/selector';
import { closeAll, socketPair } from './fixtures';

/** The event mask the kernel holds for `fd` in epoll instance `epfd`, or null if it holds none. */
function kernelMask(epfd: number, fd: number): number | null {
  const line = fs.readFileSync(`/proc/self/fdinfo/${epfd}`, 'utf8').split('\n').find((l) => new RegExp(`^tfd:\\s+${fd}\\s`).test(l));
  return line ? parseInt(/events:\s+([0-9a-f]+)/.exec(line)![1], 16) : null;
}

const OUT = constants.EPOLLOUT ?? 0;

(binding.epoll_wait ? describe : describe.skip)('selectors: epoll with batchInterest (Linux only)', () => {
  it('modify() waits for the next wait (or applyChanges) to reach the kernel', () => {
    const sel = new EpollSelector({ batchInterest: true });
    const [a, b] = socketPair();
    try {
      sel.register(a, EVENT_READ);
      assert.equal(kernelMask(sel.epfd, a)! & OUT, 0);
      sel.modify(a, EVENT_READ | EVENT_WRITE);
      assert.equal(kernelMask(sel.epfd, a)! & OUT, 0, 'not yet in the kernel');
      assert.equal(sel.waitReady(0), 1, 'the wait applies it first: writable at once');
      assert.equal(sel.readyKeys[0].readyEvents, EVENT_WRITE);
      assert.equal(kernelMask(sel.epfd, a)! & OUT, OUT);
      sel.modify(a, EVENT_READ);
      sel.applyChanges();
      assert.equal(kernelMask(sel.epfd, a)! & OUT, 0);
    } finally {
      sel.close();
      closeAll(a, b);
    }
  });

  it('a change undone before the wait never reaches the kernel; a readiness it would have masked is not reported', () => {
    const sel = new EpollSelector({ batchInterest: true });
    const [a, b] = socketPair();
    try {
      sel.register(a, EVENT_READ);
      const before = kernelMask(sel.epfd, a);
      sel.modify(a, EVENT_READ | EVENT_WRITE);
      sel.modify(a, EVENT_READ);
      sel.applyChanges();
      assert.equal(kernelMask(sel.epfd, a), before);
      assert.equal(sel.waitReady(0), 0, 'no write interest, nothing readable');
    } finally {
      sel.close();
      closeAll(a, b);
    }
  });

  it('registration and unregistration still reach the kernel at once (a closed descriptor must leave the set)', () => {
    const sel = new EpollSelector({ batchInterest: true });
    const [a, b] = socketPair();
    try {
      sel.register(a, EVENT_READ);
      assert.notEqual(kernelMask(sel.epfd, a), null);
      sel.modify(a, EVENT_WRITE);
      sel.unregister(a);
      assert.equal(kernelMask(sel.epfd, a), null);
      sel.applyChanges(); // The pending change of an unregistered key is dropped, not applied.
      assert.throws(() => sel.register(-1, EVENT_READ), RangeError);
    } finally {
      sel.close();
      closeAll(a, b);
    }
  });

  it('a descriptor closed with a change pending (without unregistering): the wait forgets it instead of failing', () => {
    const sel = new EpollSelector({ batchInterest: true });
    const [a, b] = socketPair();
    sel.register(a, EVENT_READ);
    sel.modify(a, EVENT_READ | EVENT_WRITE);
    binding.close(a); // The kernel drops it from the epoll set on close.
    assert.equal(sel.waitReady(0), 0);
    assert.equal(sel.getKey(a), undefined, 'forgotten');
    sel.close();
    binding.close(b);
  });

  it('edge-triggered and one-shot ignore batchInterest: there EPOLL_CTL_MOD re-arms, and skipping one would lose an edge', () => {
    for (const options of [{ edgeTriggered: true }, { oneShot: true }]) {
      const sel = new EpollSelector({ ...options, batchInterest: true });
      const [a, b] = socketPair();
      try {
        sel.register(a, EVENT_READ);
        sel.modify(a, EVENT_READ | EVENT_WRITE);
        assert.equal(kernelMask(sel.epfd, a)! & OUT, OUT, JSON.stringify(options));
      } finally {
        sel.close();
        closeAll(a, b);
      }
    }
  });

  it('attached (uv-poll): a change made outside a turn is applied at once, since Node\'s loop waits, not ours', async () => {
    const reactor = new Reactor(new EpollSelector({ batchInterest: true }));
    const [a, b] = socketPair();
    const sel = reactor.selector as EpollSelector<unknown>;
    try {
      reactor.add(a, EVENT_READ, () => undefined);
      reactor.attach();
      const written = new Promise<number>((resolve) => reactor.modify(a, EVENT_READ | EVENT_WRITE, (events) => {
        reactor.modify(a, EVENT_READ);
        resolve(events);
      }));
      assert.equal(kernelMask(sel.epfd, a)! & OUT, OUT, 'applied at once');
      assert.equal(await written, EVENT_WRITE);
      // Changed inside the turn: applied when the turn ended, before Node's loop waited again.
      assert.equal(kernelMask(sel.epfd, a)! & OUT, 0);
    } finally {
      reactor.close();
      closeAll(a, b);
    }
  });
});
