/**
 * IoUringSelector beyond the shared contract: what io_uring does differently and how the selector
 * copes (multishot polls the kernel ends, stale completions, files held by a pending poll,
 * registrations batched into the wait), the native ring's argument checks, and the run-time
 * detection under a seccomp filter that refuses io_uring_setup.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { binding, constants, IoUringConstructor } from '../lib/native';
import { ioUringUnavailable, IoUringSelector } from '../lib/selectors/io-uring';
import { EVENT_READ, EVENT_WRITE } from '../lib/selectors/selector';
import { closeAll, socketPair, tcpPair } from './fixtures';
import { leakedSince, openKernelObjects } from './helpers';
import { skipUnless } from './skip';
import { requireTool } from './run-tool';

const SAFETY_MS = 5000;

describe('io_uring', function () {
  let kernelObjects: Map<number, string>;
  let fds: number[];

  before(function () {
    // Linux, with io_uring allowed for this process (kernel.io_uring_disabled, seccomp).
    const refused = ioUringUnavailable();
    skipUnless(this, refused === null, `io_uring refused here: ${refused?.message}`);
  });

  beforeEach(() => {
    kernelObjects = openKernelObjects();
    fds = [];
  });

  afterEach(() => {
    closeAll(...fds);
    assert.deepEqual(leakedSince(kernelObjects), []);
  });

  function pair(): [number, number] {
    const p = socketPair();
    fds.push(...p);
    return p;
  }

  describe('IoUringSelector', () => {
    it('queues registrations and submits them with the wait: nothing reaches the kernel before it', () => {
      using selector = new IoUringSelector();
      const [a, b] = pair();
      const [c] = pair();
      selector.register(a, EVENT_READ);
      selector.register(b, EVENT_WRITE);
      selector.register(c, EVENT_READ);
      assert.equal(selector.queued, 3);
      const ready = selector.select(0);
      assert.equal(selector.queued, 0);
      assert.deepEqual(ready.map((k) => [k.fd, k.readyEvents]), [[b, EVENT_WRITE]]);
      selector.unregister(b);
      selector.modify(a, EVENT_READ | EVENT_WRITE);
      // One removal for b; a removal and a new multishot poll (a new id) for a.
      assert.equal(selector.queued, 3);
      assert.deepEqual(selector.select(0).map((k) => [k.fd, k.readyEvents]), [[a, EVENT_WRITE]]);
      assert.equal(selector.queued, 0);
    });

    it('a full completion ring ends multishot polls; the selector re-arms each, so every socket is still reported afterwards', () => {
      for (const edgeTriggered of [true, false]) {
        // 8 readers, a completion ring of 4: the kernel posts 4 and ends the other 4 polls.
        using selector = new IoUringSelector({ entries: 4, cqEntries: 4, edgeTriggered });
        const pairs = Array.from({ length: 8 }, () => pair());
        for (const [rd] of pairs) selector.register(rd, EVENT_READ);
        selector.select(0);
        const round = (): Set<number> => {
          for (const [, wr] of pairs) binding.send(wr, Buffer.from('x'));
          const seen = new Set<number>();
          const scratch = Buffer.alloc(16);
          for (let waits = 0; seen.size < pairs.length && waits < 50; waits++) {
            for (const key of selector.select(SAFETY_MS)) {
              seen.add(key.fd);
              while (binding.recv(key.fd, scratch) > 0) { /* drain */ }
            }
          }
          return seen;
        };
        assert.equal(round().size, 8, `round 1 (edgeTriggered: ${edgeTriggered})`);
        assert.ok(selector.rearmed >= 4, `the kernel ended ${selector.rearmed} polls (edgeTriggered: ${edgeTriggered})`);
        const ended = selector.rearmed;
        assert.equal(round().size, 8, `round 2, after the re-arms (edgeTriggered: ${edgeTriggered})`);
        assert.ok(selector.rearmed >= ended);
      }
    });

    it('a completion of a removed poll never reaches the key registered after it on the same descriptor', () => {
      using selector = new IoUringSelector();
      const [rd, wr] = pair();
      selector.register(rd, EVENT_READ, 'old');
      selector.select(0);
      // The completion for this arrival is in the ring now, posted while send() returned.
      binding.send(wr, Buffer.from('x'));
      assert.equal(binding.recv(rd, Buffer.alloc(4)), 1);
      selector.unregister(rd);
      selector.register(rd, EVENT_READ, 'new');
      // The old poll's completion (and its -ECANCELED) come out of the ring here: both stale.
      assert.deepEqual(selector.select(0), []);
      binding.send(wr, Buffer.from('y'));
      assert.deepEqual(selector.select(SAFETY_MS).map((k) => k.data), ['new']);
    });

    it('level-triggered by default: unread data is reported on every wait; edgeTriggered reports it once', () => {
      for (const edgeTriggered of [false, true]) {
        using selector = new IoUringSelector({ edgeTriggered });
        const [rd, wr] = pair();
        selector.register(rd, EVENT_READ);
        binding.send(wr, Buffer.from('0123456789'));
        const counts = [0, 1, 2].map(() => selector.select(0).length);
        assert.deepEqual(counts, edgeTriggered ? [1, 0, 0] : [1, 1, 1]);
        binding.recv(rd, Buffer.alloc(10));
        // Drained: the level re-check finds nothing and stays armed; a new arrival is reported once.
        assert.equal(selector.select(0).length, edgeTriggered ? 0 : 0);
        binding.send(wr, Buffer.from('z'));
        assert.deepEqual(selector.select(SAFETY_MS).map((k) => k.readyEvents), [EVENT_READ]);
      }
    });

    it('a pending poll holds the file: a socket closed while registered closes for real only once unregistered and submitted', () => {
      using selector = new IoUringSelector();
      const [client, server] = tcpPair();
      fds.push(client);
      selector.register(server, EVENT_READ);
      selector.select(0);
      binding.close(server);
      const scratch = Buffer.alloc(4);
      // epoll would have forgotten it; here the poll still references the socket: no FIN yet.
      assert.equal(binding.recv(client, scratch), -1);
      selector.unregister(server);
      selector.applyChanges();
      // Now the last reference is gone and the FIN is on its way (loopback: wait for it, bounded).
      const pollfds = new Int32Array(2);
      pollfds[0] = client;
      new Int16Array(pollfds.buffer)[2] = constants.POLLIN;
      assert.equal(binding.poll!(pollfds, 1, SAFETY_MS), 1);
      assert.equal(binding.recv(client, scratch), 0);
    });

    it('a descriptor closed before its registration reached the kernel: the wait forgets the key (EBADF)', () => {
      using selector = new IoUringSelector();
      const [rd, other] = socketPair();
      fds.push(other);
      selector.register(rd, EVENT_READ);
      binding.close(rd);
      assert.deepEqual(selector.select(0), []);
      assert.equal(selector.getKey(rd), undefined);
    });

    it('the ring descriptor is readable while a completion waits in it (what the attached reactor watches)', () => {
      using selector = new IoUringSelector();
      selector.prepareToAttach();
      const [rd, wr] = pair();
      selector.register(rd, EVENT_READ);
      selector.applyChanges();
      const pollfds = new Int32Array(2);
      pollfds[0] = selector.fd;
      new Int16Array(pollfds.buffer)[2] = constants.POLLIN;
      assert.equal(binding.poll!(pollfds, 1, 0), 0);
      binding.send(wr, Buffer.from('x'));
      assert.equal(binding.poll!(pollfds, 1, SAFETY_MS), 1);
      assert.equal(selector.select(0).length, 1);
      assert.equal(binding.poll!(pollfds, 1, 0), 0);
    });

    for (const edgeTriggered of [true, false]) {
      it(`${edgeTriggered ? 'edge' : 'level'}-triggered: a poll failure in the wait that collected ready keys delivers those keys, then the next wait reports the failure`, () => {
        using selector = new IoUringSelector({ edgeTriggered });
        const [a, aPeer] = pair();
        const [b] = pair();
        selector.register(a, EVENT_READ, 'a');
        const keyB = selector.register(b, EVENT_READ, 'b');
        binding.send(aPeer, Buffer.from('x'));
        // A real failure from the kernel under b's id: IORING_POLL_ADD_LEVEL is refused (EINVAL).
        const ring = (selector as unknown as { ring: InstanceType<IoUringConstructor> }).ring;
        const R = binding.IoUring as IoUringConstructor;
        ring.pollAdd(b, constants.POLLIN, keyB.slot as number, R.POLL_ADD_MULTI | R.POLL_ADD_LEVEL);
        const ready = selector.select(SAFETY_MS);
        assert.deepEqual(ready.map((k) => k.data), ['a'], 'the ready key is delivered, not lost with the failure');
        assert.throws(() => selector.select(0), (err: Error & { code?: string; syscall?: string }) => err.code === 'EINVAL' && err.syscall === 'io_uring_enter');
        assert.equal(selector.getKey(b), undefined, 'the failed registration is forgotten');
        if (edgeTriggered) assert.deepEqual(selector.select(0), [], 'no edge is reported twice');
        else assert.deepEqual(selector.select(0).map((k) => k.data), ['a'], 'level: still readable');
      });
    }

    it('prepareToAttach() moves a DEFER_TASKRUN ring\'s registrations to a plain ring: nothing registered is lost, old ids are stale', () => {
      using selector = new IoUringSelector();
      const [rd, wr] = pair();
      const [idle] = pair();
      selector.register(rd, EVENT_READ, 'rd');
      selector.register(idle, EVENT_READ, 'idle');
      binding.send(wr, Buffer.from('x'));
      assert.deepEqual(selector.select(SAFETY_MS).map((k) => k.data), ['rd']);
      const before = selector.fd;
      selector.prepareToAttach();
      assert.notEqual(selector.getKey(rd), undefined);
      // The data is still unread: the fresh poll reports it (level); the idle socket stays quiet.
      assert.deepEqual(selector.select(SAFETY_MS).map((k) => k.data), ['rd']);
      selector.prepareToAttach();
      assert.equal(selector.keys.size, 2);
      assert.ok(!openKernelObjects().has(before) || selector.fd === before, 'the deferred ring is closed');
    });
  });

  describe('the native ring', () => {
    const IoUring = (): IoUringConstructor => binding.IoUring as IoUringConstructor;

    it('refuses bad arguments with TypeError/RangeError, and a closed ring with ERR_INVALID_STATE', () => {
      const R = IoUring();
      assert.throws(() => new R(0), RangeError);
      assert.throws(() => new R(1.5), TypeError);
      assert.throws(() => new R(8, 4), { name: 'RangeError', message: /cqEntries/ });
      assert.throws(() => new R(65536), RangeError);
      const ring = new R(4);
      try {
        assert.throws(() => ring.pollAdd(-1, constants.POLLIN, 1), RangeError);
        assert.throws(() => ring.pollAdd('3' as unknown as number, constants.POLLIN, 1), TypeError);
        assert.throws(() => ring.pollAdd(0, constants.POLLIN, 2 ** 32), RangeError);
        assert.throws(() => ring.pollAdd(0, constants.POLLIN, 1, 1 << 5), RangeError);
        assert.throws(() => ring.wait([] as unknown as Int32Array, 1, 0), TypeError);
        assert.throws(() => ring.wait(new Int32Array(1), 1, 0), RangeError);
        assert.throws(() => ring.wait(new Int32Array(4), 3, 0), RangeError);
        assert.equal(ring.pending(), 0);
      } finally {
        ring.close();
        ring.close();
      }
      assert.throws(() => ring.wait(new Int32Array(2), 1, 0), { code: 'ERR_INVALID_STATE' });
      assert.throws(() => ring.pollAdd(0, constants.POLLIN, 1), { code: 'ERR_INVALID_STATE' });
    });

    it('reports the kernel\'s answers as [data, result]: -EBADF for a closed descriptor, -EINVAL for IORING_POLL_ADD_LEVEL, -ENOENT for removing nothing, none stopping the rest', () => {
      const R = IoUring();
      const ring = new R(8);
      const [a] = pair();
      const [rd, other] = socketPair();
      fds.push(other);
      binding.close(rd);
      try {
        ring.pollAdd(rd, constants.POLLIN, 7, R.POLL_ADD_MULTI);
        ring.pollAdd(a, constants.POLLIN, 8, R.POLL_ADD_MULTI | R.POLL_ADD_LEVEL);
        ring.pollRemove(12345, 9);
        const events = new Int32Array(16);
        const n = ring.wait(events, 8, SAFETY_MS);
        const results = new Map<number, number>();
        for (let i = 0; i < n; i++) results.set(events[2 * i], events[2 * i + 1]);
        assert.deepEqual(results, new Map([[7, -constants.errno.EBADF], [8, -constants.errno.EINVAL], [9, -constants.errno.ENOENT]]));
      } finally {
        ring.close();
      }
    });

    it('a completion carries only its wake-up\'s events: an arrival is IN alone on a writable socket, where edge-triggered epoll says IN|OUT', () => {
      const R = IoUring();
      const ring = new R(8);
      const [a, z] = pair();
      const epfd = binding.epoll_create1!();
      try {
        const events = new Int32Array(8);
        ring.pollAdd(a, constants.POLLIN | constants.POLLOUT, 7, R.POLL_ADD_MULTI);
        assert.equal(ring.wait(events, 4, SAFETY_MS), 1);
        assert.equal(events[1] & 0xffff, constants.POLLOUT, 'at registration: the full mask (writable, nothing to read)');
        binding.epoll_ctl!(epfd, constants.EPOLL_CTL_ADD!, a, constants.EPOLLIN! | constants.EPOLLOUT! | constants.EPOLLET!);
        assert.equal(binding.epoll_wait!(epfd, events, 4, 0), 1);
        binding.send(z, Buffer.from('x'));
        assert.equal(ring.wait(events, 4, SAFETY_MS), 1);
        assert.equal(events[1] & 0xffff, constants.POLLIN);
        assert.equal(binding.epoll_wait!(epfd, events, 4, 0), 1);
        assert.equal(events[1], constants.EPOLLIN! | constants.EPOLLOUT!);
      } finally {
        binding.close(epfd);
        ring.close();
      }
    });

    it('a wait with a timeout and nothing to complete returns 0 after it', () => {
      const ring = new (IoUring())(2);
      try {
        const start = performance.now();
        assert.equal(ring.wait(new Int32Array(2), 1, 30), 0);
        assert.ok(performance.now() - start >= 30 * 0.95);
      } finally {
        ring.close();
      }
    });
  });
});

describe('io_uring refused: a seccomp filter on io_uring_setup (as container profiles install)', function () {
  this.timeout(60000);
  let wrapper = '';
  let dir = '';

  before(function () {
    skipUnless(this, process.platform === 'linux', 'seccomp filters are Linux\'s');
    requireTool('cc', ['--version'], 'gcc');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-seccomp-'));
    wrapper = path.join(dir, 'refuse-io-uring');
    execFileSync('cc', ['-O2', '-o', wrapper, path.resolve(__dirname, '..', '..', 'test', 'native', 'refuse-io-uring.c')]);
  });

  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const [name, reason] of [['EPERM', /seccomp filter refuses/], ['ENOSYS', /no io_uring|seccomp filter answers ENOSYS/]] as const) {
    it(`${name}: availableMechanisms() leaves io_uring out, everything else works, and the selector says why`, () => {
      const script = `
        const { availableMechanisms, createSelector } = require('./dist/lib/selectors/default');
        const { ioUringUnavailable } = require('./dist/lib/selectors/io-uring');
        const why = ioUringUnavailable();
        let thrown = null;
        try { createSelector('io_uring'); } catch (err) { thrown = { code: err.code, errno: err.errno, syscall: err.syscall, message: err.message }; }
        const epoll = createSelector('epoll'); epoll.close();
        console.log(JSON.stringify({ mechanisms: availableMechanisms(), code: why.code, message: why.message, thrown }));`;
      const out = execFileSync(wrapper, [String(constants.errno[name]), process.execPath, '-e', script],
        { cwd: path.resolve(__dirname, '..', '..'), encoding: 'utf8' });
      const report = JSON.parse(out.trim().split('\n').pop()!) as {
        mechanisms: string[]; code: string; message: string; thrown: { code: string; errno: number; syscall: string; message: string };
      };
      assert.deepEqual(report.mechanisms, ['epoll', 'poll', 'select']);
      assert.equal(report.code, name);
      assert.match(report.message, reason);
      assert.deepEqual([report.thrown.code, report.thrown.errno, report.thrown.syscall], [name, -constants.errno[name], 'io_uring_setup']);
    });
  }
});
