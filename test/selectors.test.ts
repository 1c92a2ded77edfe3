/**
 * The selector contract: one suite, run against every mechanism this platform has, so the
 * selectors are interchangeable by construction.
 */
import * as assert from 'node:assert/strict';
import { binding, constants } from '../lib/native';
import { EpollSelector } from '../lib/selectors/epoll';
import { SelectSelector } from '../lib/selectors/select';
import { DefaultSelector, availableMechanisms } from '../lib/selectors/default';
import { EVENT_READ, EVENT_WRITE, Selector } from '../lib/selectors/selector';
import { IoHandler, Reactor } from '../lib/reactor';
import { closeAll, makeSelector, selectorVariants, socketPair, tcpPair } from './fixtures';
import { descriptorLimit, leakedSince, openKernelObjects } from './helpers';
import { linuxFeature, skipUnless } from './skip';

const payload = Buffer.from('ping');

for (const variant of selectorVariants()) {
  describe(`selector contract: ${variant.name}`, () => {
    let selector: Selector<string>;
    let fds: number[];
    let before: Map<number, string>;

    beforeEach(() => {
      before = openKernelObjects();
      selector = makeSelector<string>(variant);
      fds = [];
    });

    afterEach(() => {
      selector.close();
      closeAll(...fds);
      assert.deepEqual(leakedSince(before), []);
    });

    function pair(): [number, number] {
      const p = socketPair();
      fds.push(...p);
      return p;
    }

    it('reports nothing ready on an idle descriptor when the timeout expires', () => {
      const [a] = pair();
      selector.register(a, EVENT_READ, 'a');
      assert.equal(selector.select(0).length, 0);
      assert.equal(selector.select(1).length, 0);
    });

    it('reports a descriptor readable once data has arrived, with its data', () => {
      const [a, b] = pair();
      const key = selector.register(a, EVENT_READ, 'reader');
      binding.send(b, payload);
      const ready = selector.select(1000);
      assert.equal(ready.length, 1);
      assert.equal(ready[0], key);
      assert.equal(ready[0].fd, a);
      assert.equal(ready[0].data, 'reader');
      assert.equal(ready[0].readyEvents, EVENT_READ);
    });

    it('reports a connected socket writable and only the interest asked for', () => {
      const [a] = pair();
      selector.register(a, EVENT_WRITE, 'w');
      const ready = selector.select(1000);
      assert.equal(ready.length, 1);
      assert.equal(ready[0].readyEvents, EVENT_WRITE);
    });

    it('reports both events on one key when both are ready', () => {
      const [a, b] = pair();
      selector.register(a, EVENT_READ | EVENT_WRITE, 'rw');
      binding.send(b, payload);
      const ready = selector.select(1000);
      assert.equal(ready.length, 1);
      assert.equal(ready[0].readyEvents, EVENT_READ | EVENT_WRITE);
    });

    it('reports the peer\'s close as readable (recv then returns 0)', () => {
      const [a, b] = pair();
      selector.register(a, EVENT_READ, 'a');
      binding.close(b);
      fds.splice(fds.indexOf(b), 1);
      const ready = selector.select(1000);
      assert.equal(ready.length, 1);
      assert.equal(ready[0].readyEvents, EVENT_READ);
      assert.equal(binding.recv(a, Buffer.alloc(8)), 0);
    });

    it('works over TCP on IPv4 and IPv6 as over Unix sockets', () => {
      for (const family of [constants.AF_INET, constants.AF_INET6]) {
        const [client, server] = tcpPair(family);
        fds.push(client, server);
        selector.register(server, EVENT_READ, 'tcp');
        binding.send(client, payload);
        const ready = selector.select(1000);
        assert.equal(ready.length, 1, `family ${family}`);
        assert.equal(ready[0].fd, server);
        selector.unregister(server);
      }
    });

    it('modify() changes the interest and the data', () => {
      const [a] = pair();
      selector.register(a, EVENT_READ, 'before');
      assert.equal(selector.select(0).length, 0);
      const key = selector.modify(a, EVENT_WRITE, 'after');
      assert.equal(key.events, EVENT_WRITE);
      const ready = selector.select(1000);
      assert.equal(ready.length, 1);
      assert.equal(ready[0].data, 'after');
    });

    it('unregister() stops reports and marks the key as no longer registered', () => {
      const [a, b] = pair();
      const key = selector.register(a, EVENT_READ, 'a');
      binding.send(b, payload);
      assert.equal(selector.unregister(a), key);
      assert.equal(key.registered, false);
      assert.equal(selector.getKey(a), undefined);
      assert.equal(selector.select(0).length, 0);
    });

    it('unregister() tolerates a descriptor that was already closed', () => {
      const [a] = pair();
      selector.register(a, EVENT_READ, 'a');
      binding.close(a);
      fds.splice(fds.indexOf(a), 1);
      assert.doesNotThrow(() => selector.unregister(a));
      assert.equal(selector.keys.size, 0);
    });

    it('keeps an fd -> key map that register/unregister maintain', () => {
      const [a, b] = pair();
      selector.register(a, EVENT_READ, 'a');
      selector.register(b, EVENT_WRITE, 'b');
      assert.deepEqual([...selector.keys.keys()].sort(), [a, b].sort());
      assert.equal(selector.getKey(b)?.data, 'b');
      selector.unregister(a);
      assert.deepEqual([...selector.keys.keys()], [b]);
    });

    it('refuses a second registration of the same descriptor with EEXIST', () => {
      const [a] = pair();
      selector.register(a, EVENT_READ, 'a');
      assert.throws(() => selector.register(a, EVENT_WRITE, 'again'), { code: 'EEXIST' });
      assert.equal(selector.getKey(a)?.data, 'a');
    });

    it('refuses modify/unregister of an unknown descriptor with ENOENT', () => {
      assert.throws(() => selector.modify(12345, EVENT_READ), { code: 'ENOENT' });
      assert.throws(() => selector.unregister(12345), { code: 'ENOENT' });
    });

    it('refuses bad arguments with TypeError/RangeError', () => {
      const [a] = pair();
      assert.throws(() => selector.register(-1, EVENT_READ), RangeError);
      assert.throws(() => selector.register(1.5, EVENT_READ), TypeError);
      assert.throws(() => selector.register('3' as unknown as number, EVENT_READ), TypeError);
      assert.throws(() => selector.register(a, 0), RangeError);
      assert.throws(() => selector.register(a, 4), RangeError);
      assert.equal(selector.keys.size, 0);
    });

    it('waitReady() allocates nothing: it counts into readyKeys, one array reused and never shrunk', () => {
      const pairs = [pair(), pair(), pair()];
      const keys = pairs.map(([a], i) => selector.register(a, EVENT_READ, `p${i}`));
      const readyKeys = selector.readyKeys;
      for (const [, b] of pairs) binding.send(b, payload);
      assert.equal(selector.waitReady(1000), 3);
      assert.equal(selector.readyKeys, readyKeys);
      assert.deepEqual(new Set(readyKeys.slice(0, 3)), new Set(keys));
      // Drain all but one: the next wait counts one key, and the array keeps its size.
      for (const [a] of pairs.slice(1)) binding.recv(a, Buffer.alloc(16));
      const n = selector.waitReady(variant.options.edgeTriggered ? 0 : 1000);
      assert.equal(n, variant.options.edgeTriggered ? 0 : 1);
      if (n === 1) assert.equal(readyKeys[0], keys[0]);
      assert.equal(selector.readyKeys, readyKeys);
      assert.ok(readyKeys.length >= 3, 'the array was not shrunk (that would free its backing store)');
    });

    it('select() returns a new array of exactly the ready keys, the caller\'s to keep', () => {
      const [a, b] = pair();
      const key = selector.register(a, EVENT_READ, 'a');
      binding.send(b, payload);
      const first = selector.select(1000);
      assert.deepEqual(first, [key]);
      binding.recv(a, Buffer.alloc(16));
      const second = selector.select(0);
      assert.notEqual(second, first);
      assert.deepEqual(second, []);
      assert.deepEqual(first, [key], 'a later wait leaves an earlier result alone');
    });

    it('waits at least the timeout asked for, a fraction of a millisecond rounding up', () => {
      const [a] = pair();
      selector.register(a, EVENT_READ, 'a');
      for (const timeout of [0.2, 3]) {
        const start = process.hrtime.bigint();
        assert.equal(selector.select(timeout).length, 0);
        const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
        // A lower bound only: a wait may last longer on a busy machine, never shorter.
        assert.ok(elapsedMs >= Math.min(timeout, 1) * 0.95, `select(${timeout}) returned after ${elapsedMs} ms`);
      }
    });

    it('is unusable after close(), and close() is idempotent', () => {
      const [a] = pair();
      const key = selector.register(a, EVENT_READ, 'a');
      selector.close();
      selector.close();
      assert.equal(selector.closed, true);
      assert.equal(key.registered, false);
      assert.throws(() => selector.select(0), /closed/);
      assert.throws(() => selector.waitReady(0), /closed/);
      assert.throws(() => selector.register(a, EVENT_READ), /closed/);
      assert.throws(() => selector.modify(a, EVENT_READ), /closed/);
      assert.throws(() => selector.unregister(a), /closed/);
      assert.throws(() => selector.getKey(a), /closed/, 'getKey() too, like every other method');
      assert.equal(selector.keys.size, 0);
    });

    it('keys cannot be used to change the registrations (the view has no mutators)', () => {
      const [a, b] = pair();
      const key = selector.register(a, EVENT_READ, 'a');
      const asMap = selector.keys as unknown as Map<number, unknown>;
      assert.throws(() => asMap.delete(a), TypeError);
      assert.throws(() => asMap.set(a, 'x'), TypeError);
      assert.throws(() => asMap.clear(), TypeError);
      // Had the delete gone through: epoll would refuse this with EEXIST, poll would report a twice.
      assert.throws(() => selector.register(a, EVENT_READ), { code: 'EEXIST' });
      binding.send(b, payload);
      assert.deepEqual(selector.select(1000), [key]);
    });

    it('handles many registrations and removals in any order (slots stay consistent)', () => {
      const pairs = Array.from({ length: 40 }, () => pair());
      pairs.forEach(([a], i) => selector.register(a, EVENT_READ, `p${i}`));
      // Remove every third, then make the rest readable: each must be reported with its own data.
      pairs.forEach(([a], i) => { if (i % 3 === 0) selector.unregister(a); });
      pairs.forEach(([, b]) => binding.send(b, payload));
      const seen = new Map(selector.select(1000).map((k) => [k.fd, k.data]));
      pairs.forEach(([a], i) => {
        if (i % 3 === 0) assert.equal(seen.has(a), false);
        else assert.equal(seen.get(a), `p${i}`);
      });
    });
  });
}

describe('select() and FD_SETSIZE', () => {
  it('refuses a descriptor >= FD_SETSIZE at register() with a RangeError, and keeps working', function () {
    skipUnless(this, binding.platform !== 'win32', "Windows' fd_set limits how many sockets, not their values: test/windows/select.test.ts");
    const needed = constants.FD_SETSIZE + 8;
    if (descriptorLimit() < needed) {
      throw new Error(`this test needs a descriptor limit of at least ${needed} (ulimit -n); it is ${descriptorLimit()}`);
    }
    const before = openKernelObjects();
    const held: number[] = [];
    const selector = new SelectSelector<string>();
    try {
      let high = -1;
      while (high < constants.FD_SETSIZE) {
        const [a, b] = socketPair();
        held.push(a, b);
        high = Math.max(a, b);
      }
      assert.throws(() => selector.register(high, EVENT_READ, 'high'), RangeError);
      assert.equal(selector.getKey(high), undefined);
      const [low, peer] = [held[0], held[1]];
      selector.register(low, EVENT_READ, 'low');
      binding.send(peer, payload);
      assert.equal(selector.select(1000)[0]?.data, 'low');
    } finally {
      selector.close();
      closeAll(...held);
    }
    assert.deepEqual(leakedSince(before), []);
  });
});

describe('registration rolls back when the system call fails', () => {
  it('epoll: registering a closed descriptor throws EBADF and leaves no key', function () {
    linuxFeature(this, binding.epoll_wait, 'epoll');
    const selector = new EpollSelector<string>();
    const [a, b] = socketPair();
    closeAll(a, b);
    try {
      assert.throws(() => selector.register(a, EVENT_READ, 'gone'), { code: 'EBADF', syscall: 'epoll_ctl' });
      assert.equal(selector.getKey(a), undefined);
      assert.equal(selector.keys.size, 0);
    } finally {
      selector.close();
    }
  });
});

describe('epoll trigger modes through the selector', () => {
  before(function () {
    linuxFeature(this, binding.epoll_wait, 'epoll');
  });

  it('level-triggered: reports again while data remains unread', () => {
    const selector = new EpollSelector<string>();
    const [a, b] = socketPair();
    try {
      selector.register(a, EVENT_READ, 'lt');
      binding.send(b, Buffer.alloc(100));
      assert.equal(selector.select(1000).length, 1);
      binding.recv(a, Buffer.alloc(10));
      assert.equal(selector.select(0).length, 1);
    } finally {
      selector.close();
      closeAll(a, b);
    }
  });

  it('edge-triggered: one report per arrival, silence while the same data remains', () => {
    const selector = new EpollSelector<string>({ edgeTriggered: true });
    const [a, b] = socketPair();
    try {
      selector.register(a, EVENT_READ, 'et');
      binding.send(b, Buffer.alloc(100));
      assert.equal(selector.select(1000).length, 1);
      binding.recv(a, Buffer.alloc(10));
      assert.equal(selector.select(0).length, 0, 'no new edge: 90 bytes remain but nothing is reported');
      binding.send(b, Buffer.alloc(1));
      assert.equal(selector.select(1000).length, 1, 'a new arrival is a new edge');
    } finally {
      selector.close();
      closeAll(a, b);
    }
  });

  it('one-shot: disabled after one report until modify() re-arms it, even with the same interest', () => {
    const selector = new EpollSelector<string>({ oneShot: true });
    const [a, b] = socketPair();
    try {
      selector.register(a, EVENT_READ, 'once');
      binding.send(b, payload);
      assert.equal(selector.select(1000).length, 1);
      binding.send(b, payload);
      assert.equal(selector.select(0).length, 0);
      selector.modify(a, EVENT_READ);
      assert.equal(selector.select(1000).length, 1);
    } finally {
      selector.close();
      closeAll(a, b);
    }
  });

  it('exclusive: modify() works (by re-adding, since the kernel refuses EPOLL_CTL_MOD there)', () => {
    const selector = new EpollSelector<string>({ exclusive: true });
    const [a, b] = socketPair();
    try {
      selector.register(a, EVENT_READ, 'x');
      selector.modify(a, EVENT_WRITE);
      assert.equal(selector.select(1000)[0]?.readyEvents, EVENT_WRITE);
    } finally {
      selector.close();
      closeAll(a, b);
    }
  });
});

/** The kernel's own view of an epoll instance: the events mask it holds for `fd` (/proc/self/fdinfo). */
function epollMask(epfd: number, fd: number): number {
  const text = require('node:fs').readFileSync(`/proc/self/fdinfo/${epfd}`, 'utf8') as string;
  const line = text.split('\n').find((l) => new RegExp(`^tfd:\\s+${fd}\\s`).test(l));
  if (!line) throw new Error(`fd ${fd} is not in epoll instance ${epfd}:\n${text}`);
  return parseInt(/events:\s*([0-9a-f]+)/.exec(line)![1], 16);
}

describe('exclusive registration of one descriptor (RegisterOptions.exclusive)', () => {
  if (!binding.epoll_wait) return;
  const EXCLUSIVE = constants.EPOLLEXCLUSIVE!;

  it('epoll: the kernel holds EPOLLEXCLUSIVE for that descriptor alone, and keeps it across modify()', () => {
    const selector = new EpollSelector<string>();
    const [a, b] = socketPair();
    try {
      const key = selector.register(a, EVENT_READ, 'shared listener', { exclusive: true });
      selector.register(b, EVENT_READ, 'plain');
      assert.equal(key.exclusive, true);
      assert.equal(selector.getKey(b)!.exclusive, false);
      assert.equal(epollMask(selector.epfd, a) & EXCLUSIVE, EXCLUSIVE);
      assert.equal(epollMask(selector.epfd, b) & EXCLUSIVE, 0);
      // The kernel refuses EPOLL_CTL_MOD on an exclusive registration: the selector re-adds it.
      selector.modify(a, EVENT_WRITE);
      assert.equal(epollMask(selector.epfd, a) & EXCLUSIVE, EXCLUSIVE);
      assert.equal(selector.select(1000).find((k) => k.fd === a)?.readyEvents, EVENT_WRITE);
      selector.modify(b, EVENT_READ | EVENT_WRITE);
      assert.equal(epollMask(selector.epfd, b) & EXCLUSIVE, 0);
    } finally {
      selector.close();
      closeAll(a, b);
    }
  });

  it('epoll: four selectors each hold an exclusive registration of one listening socket, and each reports it', () => {
    const listener = binding.socket(constants.AF_INET, constants.SOCK_STREAM | constants.SOCK_NONBLOCK!);
    const selectors = Array.from({ length: 4 }, () => new EpollSelector<string>());
    let client = -1;
    try {
      binding.bind(listener, '127.0.0.1', 0);
      binding.listen(listener, 16);
      for (const s of selectors.slice(1)) s.register(listener, EVENT_READ, 'listener', { exclusive: true });
      // Through a reactor, as a Listener registers it.
      const reactor = new Reactor(selectors[0] as unknown as EpollSelector<IoHandler>);
      reactor.add(listener, EVENT_READ, () => undefined, { exclusive: true });
      client = binding.socket(constants.AF_INET, constants.SOCK_STREAM | constants.SOCK_NONBLOCK!);
      binding.connect(client, '127.0.0.1', binding.getsockname(listener).port);
      // Nobody is waiting yet, so the kernel walks every exclusive watcher without waking one: each
      // finds the listener ready. What differs is the wake-up of a waiter, shown by the lab
      // (iomux trace thundering-herd); here the registration itself is what is checked.
      for (const s of selectors) assert.equal(s.select(1000).length, 1);
      for (const s of selectors) assert.equal(epollMask(s.epfd, listener) & EXCLUSIVE, EXCLUSIVE);
    } finally {
      for (const s of selectors) s.close();
      closeAll(listener, ...(client >= 0 ? [client] : []));
    }
  });

  it('the kernel refuses an exclusive registration on a one-shot selector (EINVAL), and nothing stays registered', () => {
    const selector = new EpollSelector<string>({ oneShot: true });
    const [a, b] = socketPair();
    try {
      assert.throws(() => selector.register(a, EVENT_READ, 'x', { exclusive: true }), { code: 'EINVAL', syscall: 'epoll_ctl' });
      assert.equal(selector.getKey(a), undefined);
      selector.register(a, EVENT_READ, 'x');
    } finally {
      selector.close();
      closeAll(a, b);
    }
  });
});

describe('exclusive registration elsewhere', () => {
  for (const variant of selectorVariants().filter((v) => v.mechanism !== 'epoll')) {
    it(`${variant.name}: refused with a RangeError that says why, and nothing is registered`, () => {
      const selector = makeSelector<string>(variant);
      const [a, b] = socketPair();
      try {
        assert.equal(selector.exclusiveRegistrations, false);
        assert.throws(() => selector.register(a, EVENT_READ, 'x', { exclusive: true }), (err: Error) =>
          err instanceof RangeError && /no exclusive registration/.test(err.message) && /EPOLLEXCLUSIVE/.test(err.message));
        assert.equal(selector.getKey(a), undefined);
        selector.register(a, EVENT_READ, 'x', { exclusive: false });
      } finally {
        selector.close();
        closeAll(a, b);
      }
    });
  }
});

describe('DefaultSelector', () => {
  it('is the best mechanism this platform has', () => {
    const selector = new DefaultSelector();
    try {
      assert.equal(selector.mechanism, availableMechanisms()[0]);
      if (binding.platform === 'linux') assert.equal(selector.mechanism, 'epoll');
    } finally {
      selector.close();
    }
  });
});
