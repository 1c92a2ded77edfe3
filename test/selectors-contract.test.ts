/**
 * CPython's selector tests (Lib/test/test_selectors.py), translated to this package's
 * descriptor-number API and run against every selector this platform has. Each test names the
 * CPython test it comes from. Where Python raises KeyError we refuse with ENOENT/EEXIST
 * (systemError), where it raises ValueError we throw RangeError, and getKey() of an unknown
 * descriptor returns undefined (JavaScript's Map convention) where Python raises KeyError.
 *
 * Not translated, and why:
 * - test_register "same FD, but with a different object", test_unregister_after_socket_close:
 *   the API takes descriptor numbers only; there are no file objects to tell apart.
 * - test_select_interrupt_exc (a signal handler that raises ends the wait): a JavaScript signal
 *   listener runs on the event loop after the wait, never inside it, so nothing can raise there.
 * - KqueueSelectorTestCase.test_register_bad_fd: kqueue only; epoll's equivalent (EBADF, key
 *   rolled back) is in selectors.test.ts, and select/poll make no system call at register().
 * - test_selector and test_timeout on edge-triggered epoll: both expect a writable socket to be
 *   reported on every wait (Python's selectors are level-triggered only); an edge is reported once.
 * - test_modify's "shortcut" is checked by its effect (an edge-triggered epoll not re-armed)
 *   instead of by mocking register/unregister.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { binding, constants } from '../lib/native';
import { EVENT_READ, EVENT_WRITE, Selector, SelectorKey } from '../lib/selectors/selector';
import { closeAll, makeSelector, selectorVariants, socketPair } from './fixtures';
import { descriptorLimit, leakedSince, openKernelObjects } from './helpers';
import { skipUnless } from './skip';

const SAFETY_MS = 5000;
const MSG = Buffer.from(' This is a test.');

for (const variant of selectorVariants()) {
  describe(`selector contract (CPython's test_selectors): ${variant.name}`, () => {
    let selector: Selector<unknown>;
    let fds: number[];
    let before: Map<number, string>;

    beforeEach(() => {
      before = openKernelObjects();
      selector = makeSelector<unknown>(variant);
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

    function closeNow(fd: number): void {
      binding.close(fd);
      fds.splice(fds.indexOf(fd), 1);
    }

    it('register() returns a key with the descriptor, interest and data; refuses an unknown event, a negative descriptor and a second registration (test_register)', () => {
      const [rd] = pair();
      const key = selector.register(rd, EVENT_READ, 'data');
      assert.ok(key instanceof SelectorKey);
      assert.equal(key.fd, rd);
      assert.equal(key.events, EVENT_READ);
      assert.equal(key.data, 'data');
      assert.throws(() => selector.register(0, 999999), RangeError);
      assert.throws(() => selector.register(-10, EVENT_READ), RangeError);
      assert.throws(() => selector.register(rd, EVENT_READ), { code: 'EEXIST' });
      assert.equal(selector.keys.size, 1);
    });

    it('unregister() refuses an unknown descriptor and a second unregister with ENOENT (test_unregister)', () => {
      const [rd] = pair();
      selector.register(rd, EVENT_READ);
      selector.unregister(rd);
      assert.throws(() => selector.unregister(999999), { code: 'ENOENT' });
      assert.throws(() => selector.unregister(rd), { code: 'ENOENT' });
    });

    it('unregister() works for both ends of a pair closed while registered (test_unregister_after_fd_close)', () => {
      const [rd, wr] = pair();
      selector.register(rd, EVENT_READ);
      selector.register(wr, EVENT_WRITE);
      closeNow(rd);
      closeNow(wr);
      selector.unregister(rd);
      selector.unregister(wr);
      assert.equal(selector.keys.size, 0);
    });

    it('unregister() of a closed descriptor whose number a new socket took leaves the new socket alone (test_unregister_after_fd_close_and_reuse)', function () {
      skipUnless(this, binding.platform !== 'win32', "Windows does not hand a closed socket's value to the next socket; Python runs this on POSIX only too");
      const [rd] = pair();
      selector.register(rd, EVENT_READ, 'old');
      closeNow(rd);
      // POSIX gives the lowest free number: open pairs until one takes rd's (Python uses dup2).
      let reused = -1;
      let peer = -1;
      for (let tries = 0; reused !== rd && tries < 1000; tries++) [reused, peer] = pair();
      assert.equal(reused, rd);
      selector.unregister(rd);
      selector.register(reused, EVENT_READ, 'new');
      binding.send(peer, MSG);
      const ready = selector.select(SAFETY_MS);
      assert.deepEqual(ready.map((k) => [k.fd, k.data]), [[reused, 'new']]);
    });

    it('modify() changes the interest or the data of the same key, which getKey() returns; an unknown descriptor is ENOENT (test_modify)', () => {
      const [rd] = pair();
      const key = selector.register(rd, EVENT_READ);
      const key2 = selector.modify(rd, EVENT_WRITE);
      assert.equal(key2, key);
      assert.equal(key2.events, EVENT_WRITE);
      assert.equal(selector.getKey(rd), key2);
      selector.unregister(rd);

      const d1 = {};
      const d2 = {};
      const key3 = selector.register(rd, EVENT_READ, d1);
      const key4 = selector.modify(rd, EVENT_READ, d2);
      assert.equal(key4.events, EVENT_READ);
      assert.equal(key4.data, d2);
      assert.equal(selector.getKey(rd), key3);
      assert.throws(() => selector.modify(999999, EVENT_READ), { code: 'ENOENT' });
    });

    if (variant.options.edgeTriggered) {
      it('modify() with the same interest changes only the data: nothing reaches the kernel, so the edge is not re-armed (test_modify, the shortcut)', () => {
        const [rd, wr] = pair();
        selector.register(rd, EVENT_READ, 'before');
        binding.send(wr, MSG);
        assert.equal(selector.select(SAFETY_MS).length, 1);
        assert.equal(selector.select(0).length, 0, 'no new edge while the same data waits');
        selector.modify(rd, EVENT_READ, 'after');
        assert.equal(selector.select(0).length, 0, 'an EPOLL_CTL_MOD would have re-armed the edge');
        assert.equal(selector.getKey(rd)?.data, 'after');
      });
    }

    if (variant.mechanism === 'epoll') {
      it('a modify() the kernel refuses unregisters the descriptor: closed while registered, it is gone from epoll already (test_modify_unregister)', () => {
        const [rd] = pair();
        const key = selector.register(rd, EVENT_READ);
        closeNow(rd);
        assert.throws(() => selector.modify(rd, EVENT_WRITE), { code: 'EBADF', syscall: 'epoll_ctl' });
        assert.equal(selector.getKey(rd), undefined);
        assert.equal(key.registered, false);
        assert.equal(selector.keys.size, 0);
        // The number is free for a new registration (a stale key would refuse it with EEXIST).
        const [again] = pair();
        assert.doesNotThrow(() => selector.register(again, EVENT_READ));
        if (again === rd) assert.equal(selector.getKey(rd)?.registered, true);
      });

      it('its epoll descriptor is a real epoll instance (test_fileno)', () => {
        const { epfd } = selector as unknown as { epfd: number };
        assert.ok(Number.isInteger(epfd) && epfd >= 0);
        assert.equal(fs.readlinkSync(`/proc/self/fd/${epfd}`), 'anon_inode:[eventpoll]');
      });

      it('refuses a regular file with EPERM and leaves no key (EpollSelectorTestCase.test_register_file)', () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-'));
        const file = fs.openSync(path.join(dir, 'regular'), 'w+');
        try {
          assert.throws(() => selector.register(file, EVENT_READ), { code: 'EPERM', syscall: 'epoll_ctl' });
          assert.equal(selector.getKey(file), undefined);
        } finally {
          fs.closeSync(file);
          fs.rmSync(dir, { recursive: true });
        }
      });
    }

    it('after close(), getKey() throws and a keys view taken before is empty (test_close)', () => {
      const keys = selector.keys;
      const [rd, wr] = pair();
      selector.register(rd, EVENT_READ);
      selector.register(wr, EVENT_WRITE);
      selector.close();
      assert.throws(() => selector.getKey(rd), /closed/);
      assert.throws(() => selector.getKey(wr), /closed/);
      assert.equal(keys.get(rd), undefined);
      assert.equal(keys.get(wr), undefined);
      assert.equal(keys.size, 0);
    });

    it('getKey() returns the registered key, undefined for an unknown descriptor (test_get_key)', () => {
      const [rd] = pair();
      const key = selector.register(rd, EVENT_READ, 'data');
      assert.equal(selector.getKey(rd), key);
      assert.equal(selector.getKey(999999), undefined);
    });

    it('keys is a live, read-only view of the fd -> key map (test_get_map)', () => {
      const [rd] = pair();
      const keys = selector.keys;
      assert.equal(keys.size, 0);
      assert.deepEqual([...keys], []);
      const key = selector.register(rd, EVENT_READ, 'data');
      assert.equal(keys.has(rd), true);
      assert.equal(keys.get(rd), key);
      assert.equal(keys.get(999999), undefined);
      assert.equal(keys.size, 1);
      assert.deepEqual([...keys.keys()], [rd]);
      assert.deepEqual([...keys.values()], [key]);
      assert.deepEqual([...keys.entries()], [[rd, key]]);
      assert.deepEqual([...keys], [[rd, key]]);
      const seen: unknown[] = [];
      keys.forEach((value, fd, map) => seen.push(value, fd, map));
      assert.deepEqual(seen, [key, rd, keys], 'forEach hands out the view, never the map behind it');
      // Read-only: no mutator to call, and Map's own refuse to work on it.
      const mutable = keys as unknown as Record<string, unknown>;
      for (const name of ['set', 'delete', 'clear']) assert.equal(mutable[name], undefined, name);
      assert.equal(keys instanceof Map, false);
      assert.throws(() => Map.prototype.delete.call(keys, rd), TypeError);
      assert.throws(() => Map.prototype.clear.call(keys), TypeError);
      assert.equal(selector.getKey(rd), key);
    });

    it('select() with no timeout returns at once with exactly the ready keys: the writer, with EVENT_WRITE (test_select)', () => {
      const [rd, wr] = pair();
      selector.register(rd, EVENT_READ);
      const wrKey = selector.register(wr, EVENT_WRITE);
      const result = selector.select();
      for (const key of result) {
        assert.ok(key instanceof SelectorKey);
        assert.ok(key.readyEvents !== 0 && (key.readyEvents & ~(EVENT_READ | EVENT_WRITE)) === 0);
      }
      assert.deepEqual(result.map((k) => [k, k.readyEvents]), [[wrKey, EVENT_WRITE]]);
    });

    it('a using declaration closes the selector at the end of its block (test_context_manager)', () => {
      const [rd, wr] = pair();
      let outer: Selector<unknown>;
      {
        using sel = makeSelector<unknown>(variant);
        outer = sel;
        sel.register(rd, EVENT_READ);
        sel.register(wr, EVENT_WRITE);
      }
      assert.equal(outer.closed, true);
      assert.throws(() => outer.getKey(rd), /closed/);
      assert.throws(() => outer.getKey(wr), /closed/);
    });

    // Both rely on level triggering (a writer is reported on every wait), Python's only mode.
    if (!variant.options.edgeTriggered) it('12 pairs: each message a ready writer sends is reported on its own reader, and only there (test_selector)', () => {
      const readers = new Map<number, number>();
      const writers = new Map<number, number>();
      for (let i = 0; i < 12; i++) {
        const [rd, wr] = pair();
        selector.register(rd, EVENT_READ);
        selector.register(wr, EVENT_WRITE);
        readers.set(wr, rd);
        writers.set(rd, wr);
      }
      const received: string[] = [];
      let pick = 7; // A fixed walk over the ready writers instead of random.choice.
      while (readers.size > 0) {
        const readyWriters = selector.select(SAFETY_MS).filter((k) => k.readyEvents & EVENT_WRITE).map((k) => k.fd);
        assert.ok(readyWriters.length > 0, 'no sockets ready for writing');
        const wr = readyWriters[(pick += 5) % readyWriters.length];
        binding.send(wr, MSG);
        // The writers stay ready, so each wait returns at once: loop until the reader shows up.
        const deadline = Date.now() + SAFETY_MS;
        let readyReaders: number[] = [];
        while (readyReaders.length === 0 && Date.now() < deadline) {
          readyReaders = selector.select(SAFETY_MS).filter((k) => k.readyEvents & EVENT_READ).map((k) => k.fd);
        }
        assert.deepEqual(readyReaders, [readers.get(wr)]);
        const rd = readyReaders[0];
        const buf = Buffer.alloc(MSG.length);
        assert.equal(binding.recv(rd, buf), MSG.length);
        received.push(buf.toString());
        selector.unregister(writers.get(rd)!);
        selector.unregister(rd);
        readers.delete(wr);
      }
      assert.deepEqual(received, Array(12).fill(MSG.toString()));
    });

    it('select(0) with nothing registered returns an empty array (test_empty_select)', () => {
      assert.deepEqual(selector.select(0), []);
    });

    it('with nothing registered, select(timeout) still waits for its timeout (KqueueSelectorTestCase.test_empty_select_timeout)', () => {
      const start = performance.now();
      assert.deepEqual(selector.select(50), []);
      // A lower bound only: a busy machine may make the wait longer, never shorter.
      assert.ok(performance.now() - start >= 50 * 0.95);
    });

    if (!variant.options.edgeTriggered) it('select(0) and a negative timeout poll: a writer is reported, an idle reader is not; a positive timeout waits (test_timeout)', () => {
      const [rd, wr] = pair();
      selector.register(wr, EVENT_WRITE);
      assert.equal(selector.select(0).length, 1);
      assert.equal(selector.select(-1).length, 1);
      selector.unregister(wr);
      selector.register(rd, EVENT_READ);
      assert.equal(selector.select(0).length, 0);
      assert.equal(selector.select(-1).length, 0);
      const start = performance.now();
      assert.equal(selector.select(100).length, 0);
      assert.ok(performance.now() - start >= 100 * 0.95);
    });

    it('a signal during select() does not end it: the wait goes on for the rest of its timeout (test_select_interrupt_noraise)', async function () {
      skipUnless(this, binding.platform !== 'win32', 'Windows has no signals to send a process');
      const [rd] = pair();
      selector.register(rd, EVENT_READ);
      let signals = 0;
      const onSignal = (): void => {
        signals++;
      };
      process.on('SIGUSR2', onSignal);
      const signalled = new Promise((resolve) => process.once('SIGUSR2', resolve));
      try {
        // A thread that signals this process while the main thread is blocked in the wait.
        const worker = new Worker(`
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 30);
          process.kill(process.pid, 'SIGUSR2');
        `, { eval: true });
        const exited = new Promise((resolve) => worker.once('exit', resolve));
        const start = performance.now();
        assert.deepEqual(selector.select(150), []);
        assert.ok(performance.now() - start >= 150 * 0.95);
        assert.equal(await exited, 0);
        await signalled;
        assert.equal(signals, 1);
      } finally {
        process.removeListener('SIGUSR2', onSignal);
      }
    });

    if (variant.mechanism !== 'select') {
      it('watches more descriptors than FD_SETSIZE allows select() to (ScalableSelectorMixIn.test_above_fd_setsize)', () => {
        // POSIX: descriptor values past FD_SETSIZE; Windows: more sockets than an fd_set holds.
        const past = (fd: number, count: number): boolean => (binding.platform === 'win32' ? count > constants.FD_SETSIZE : fd >= constants.FD_SETSIZE);
        const needed = constants.FD_SETSIZE + 64;
        if (descriptorLimit() < needed) {
          throw new Error(`this test needs a descriptor limit of at least ${needed} (ulimit -n); it is ${descriptorLimit()}`);
        }
        let writers = 0;
        let highest = -1;
        while (!past(highest, 2 * writers)) {
          const [rd, wr] = pair();
          selector.register(rd, EVENT_READ);
          selector.register(wr, EVENT_WRITE);
          writers++;
          highest = Math.max(highest, rd, wr);
        }
        const ready = selector.select(SAFETY_MS);
        assert.equal(ready.length, writers);
        assert.ok(ready.every((k) => k.readyEvents === EVENT_WRITE));
      });
    }
  });
}
