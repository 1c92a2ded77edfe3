/**
 * The wait bindings — select, selectPollfds, poll and epoll — on real sockets. One table of
 * situations (fresh connection, data waiting, end of stream, hang-up, reset, urgent data …) runs
 * against every mechanism over socketpairs, TCP on IPv4 and IPv6, and Unix sockets; then what is
 * particular to each: caller-owned memory, epoll's flags and tokens, FD_SETSIZE, EINTR.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { binding as b, constants as C } from '../lib/native';
import { PollFdArray } from '../lib/pollfds';
import { descriptorLimit } from './helpers';
import {
  LISTENING_TRANSPORTS,
  Resources,
  STREAM_TRANSPORTS,
  StreamTransport,
  assertSystemError,
  releaseAfterEach,
  connectTo,
  connectedPair,
  familyOf,
  listener,
  settle,
} from './fixtures/sockets';

const res = new Resources();

// ---------------------------------------------------------------------------------------------
// The four mechanisms behind one shape.

/** What a wait says about one descriptor. Mechanisms that cannot express a field leave it out. */
interface Readiness {
  readable: boolean;
  writable: boolean;
  /** Urgent (out-of-band) data: select's except set, POLLPRI, EPOLLPRI. */
  priority?: boolean;
  /** POLLHUP / EPOLLHUP: both directions are finished. */
  hangup?: boolean;
  /** POLLRDHUP / EPOLLRDHUP: the peer will send nothing more. */
  rdhup?: boolean;
  /** POLLERR / EPOLLERR: an error is pending on the socket. */
  error?: boolean;
}

interface Mechanism {
  name: string;
  /** Waits on one descriptor; null when nothing was reported before the timeout. */
  wait(fd: number, interest: { read: boolean; write: boolean }, timeoutMs: number): Readiness | null;
}

/** The pollfd-based mechanisms, decoded from revents. */
function fromPollEvents(revents: number, full: boolean): Readiness | null {
  if (revents === 0) return null;
  const r: Readiness = {
    readable: (revents & C.POLLIN) !== 0,
    writable: (revents & C.POLLOUT) !== 0,
    priority: (revents & C.POLLPRI) !== 0,
  };
  if (full) {
    r.hangup = (revents & C.POLLHUP) !== 0;
    r.rdhup = (revents & C.POLLRDHUP!) !== 0;
    r.error = (revents & C.POLLERR) !== 0;
  }
  return r;
}

function pollfdsFor(fd: number, interest: { read: boolean; write: boolean }, extra: number): PollFdArray {
  const entries = new PollFdArray(1);
  entries.push(fd, (interest.read ? C.POLLIN : 0) | (interest.write ? C.POLLOUT : 0) | C.POLLPRI | extra);
  return entries;
}

const MECHANISMS: Mechanism[] = [
  {
    name: 'select',
    wait(fd, interest, timeoutMs) {
      const [r, w, x] = b.select(interest.read ? [fd] : [], interest.write ? [fd] : [], [fd], timeoutMs);
      if (r.length + w.length + x.length === 0) return null;
      return { readable: r.includes(fd), writable: w.includes(fd), priority: x.includes(fd) };
    },
  },
  {
    name: 'selectPollfds',
    wait(fd, interest, timeoutMs) {
      const entries = pollfdsFor(fd, interest, 0);
      b.selectPollfds(entries.buffer, entries.length, timeoutMs);
      return fromPollEvents(entries.revents(0), false);
    },
  },
  {
    name: 'poll',
    wait(fd, interest, timeoutMs) {
      const entries = pollfdsFor(fd, interest, C.POLLRDHUP!);
      b.poll!(entries.buffer, entries.length, timeoutMs);
      return fromPollEvents(entries.revents(0), true);
    },
  },
  {
    name: 'epoll',
    wait(fd, interest, timeoutMs) {
      const epfd = b.epoll_create1!();
      try {
        const events = (interest.read ? C.EPOLLIN! : 0) | (interest.write ? C.EPOLLOUT! : 0) | C.EPOLLPRI! | C.EPOLLRDHUP!;
        b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, fd, events);
        const out = new Int32Array(2);
        if (b.epoll_wait!(epfd, out, 1, timeoutMs) === 0) return null;
        assert.equal(out[0], fd, 'the default token is the descriptor');
        const e = out[1];
        return {
          readable: (e & C.EPOLLIN!) !== 0,
          writable: (e & C.EPOLLOUT!) !== 0,
          priority: (e & C.EPOLLPRI!) !== 0,
          hangup: (e & C.EPOLLHUP!) !== 0,
          rdhup: (e & C.EPOLLRDHUP!) !== 0,
          error: (e & C.EPOLLERR!) !== 0,
        };
      } finally {
        b.close(epfd);
      }
    },
  },
];

// ---------------------------------------------------------------------------------------------
// The situations, each with what every mechanism must report.

interface Situation {
  name: string;
  transports: readonly StreamTransport[];
  /** Builds the situation; returns the descriptor to wait on. */
  setup(transport: StreamTransport): number;
  interest?: { read: boolean; write: boolean };
  timeoutMs?: number;
  /** What must be reported (null: nothing, within the timeout); a function when transports differ. */
  expect: Readiness | null | ((transport: StreamTransport) => Readiness | null);
}

const TCP: readonly StreamTransport[] = ['tcp4', 'tcp6'];
const isUnix = (t: StreamTransport): boolean => t === 'socketpair' || t === 'unix' || t === 'abstract';
const BOTH = { read: true, write: true };
const READ = { read: true, write: false };

const SITUATIONS: Situation[] = [
  {
    name: 'a fresh connection is writable, not readable',
    transports: STREAM_TRANSPORTS,
    setup: (t) => connectedPair(res, t).client,
    expect: { readable: false, writable: true, priority: false, hangup: false, rdhup: false, error: false },
  },
  {
    name: 'with nothing to read, a wait for reading returns nothing once its timeout passes',
    transports: STREAM_TRANSPORTS,
    setup: (t) => connectedPair(res, t).client,
    interest: READ,
    timeoutMs: 15,
    expect: null,
  },
  {
    name: 'data from the peer makes it readable',
    transports: STREAM_TRANSPORTS,
    setup(t) {
      const { client, server } = connectedPair(res, t);
      b.send(server, Buffer.from('data'));
      settle(client, C.POLLIN);
      return client;
    },
    expect: { readable: true, writable: true, priority: false, hangup: false, rdhup: false, error: false },
  },
  {
    name: 'after the data is read it is no longer readable',
    transports: STREAM_TRANSPORTS,
    setup(t) {
      const { client, server } = connectedPair(res, t);
      b.send(server, Buffer.from('data'));
      settle(client, C.POLLIN);
      assert.equal(b.recv(client, Buffer.alloc(16)), 4);
      return client;
    },
    interest: READ,
    timeoutMs: 0,
    expect: null,
  },
  {
    name: 'the peer shut down writing: readable (end of stream) and RDHUP, but no hang-up',
    transports: STREAM_TRANSPORTS,
    setup(t) {
      const { client, server } = connectedPair(res, t);
      b.shutdown(server, C.SHUT_WR);
      settle(client, C.POLLIN);
      return client;
    },
    expect: { readable: true, writable: true, priority: false, hangup: false, rdhup: true, error: false },
  },
  {
    name: 'the peer closed: readable (end of stream); a hang-up at once on Unix sockets, not on TCP (we may still send)',
    transports: STREAM_TRANSPORTS,
    setup(t) {
      const { client, server } = connectedPair(res, t);
      res.close(server);
      settle(client, C.POLLIN);
      return client;
    },
    expect: (t) => ({ readable: true, writable: true, priority: false, hangup: isUnix(t), rdhup: true, error: false }),
  },
  {
    name: 'the peer closed and we shut down writing: a hang-up on every transport',
    transports: STREAM_TRANSPORTS,
    setup(t) {
      const { client, server } = connectedPair(res, t);
      res.close(server);
      settle(client, C.POLLIN);
      b.shutdown(client, C.SHUT_WR);
      return client;
    },
    expect: { readable: true, writable: true, priority: false, hangup: true, rdhup: true, error: false },
  },
  {
    name: 'the peer reset the connection (SO_LINGER 0): error and hang-up, readable and writable so a call sees it',
    transports: TCP,
    setup(t) {
      const { client, server } = connectedPair(res, t);
      b.setsockopt(server, C.SOL_SOCKET, C.SO_LINGER, { onoff: true, linger: 0 });
      res.close(server);
      settle(client, C.POLLERR);
      return client;
    },
    expect: { readable: true, writable: true, priority: false, hangup: true, rdhup: true, error: true },
  },
  {
    name: 'urgent data (MSG_OOB) is exceptional: select\'s except set, POLLPRI, EPOLLPRI',
    transports: TCP,
    setup(t) {
      const { client, server } = connectedPair(res, t);
      b.send(server, Buffer.from('!'), 0, 1, C.MSG_OOB);
      settle(client, C.POLLPRI);
      return client;
    },
    // The single urgent byte is not in-band data, so the socket is not readable.
    expect: { readable: false, writable: true, priority: true, hangup: false, rdhup: false, error: false },
  },
  {
    name: 'a listener with a connection waiting is readable',
    transports: LISTENING_TRANSPORTS,
    setup(t) {
      const listening = listener(res, t as Exclude<StreamTransport, 'socketpair'>);
      const client = res.fd(b.socket(familyOf(t as Exclude<StreamTransport, 'socketpair'>), C.SOCK_STREAM));
      connectTo(client, listening.endpoint);
      settle(listening.fd, C.POLLIN);
      return listening.fd;
    },
    interest: READ,
    expect: { readable: true, writable: false, priority: false, hangup: false, rdhup: false, error: false },
  },
  {
    name: 'a listener with no connection waiting is not readable',
    transports: LISTENING_TRANSPORTS,
    setup: (t) => listener(res, t as Exclude<StreamTransport, 'socketpair'>).fd,
    interest: READ,
    timeoutMs: 0,
    expect: null,
  },
];

/** The expected readiness, cut down to the fields `actual` can express. */
function comparable(expected: Readiness | null, actual: Readiness | null): Readiness | null {
  if (expected === null || actual === null) return expected;
  const shown: Partial<Readiness> = {};
  for (const key of Object.keys(actual) as (keyof Readiness)[]) shown[key] = expected[key];
  return shown as Readiness;
}

for (const mechanism of MECHANISMS) {
  describe(`native readiness: ${mechanism.name}`, () => {
    releaseAfterEach(res);

    for (const situation of SITUATIONS) {
      for (const transport of situation.transports) {
        it(`${situation.name} [${transport}]`, () => {
          const fd = situation.setup(transport);
          const expected = typeof situation.expect === 'function' ? situation.expect(transport) : situation.expect;
          const actual = mechanism.wait(fd, situation.interest ?? BOTH, situation.timeoutMs ?? 1000);
          assert.deepEqual(actual, comparable(expected, actual));
        });
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Caller-owned memory: the waits write into the arrays they are given, and nowhere else.

describe('native readiness: the caller\'s memory is used in place', () => {
  releaseAfterEach(res);

  const SENTINEL = 0x5a5a;

  for (const [name, wait] of [
    ['poll', (buffer: ArrayBuffer, n: number) => b.poll!(buffer, n, 0)],
    ['selectPollfds', (buffer: ArrayBuffer, n: number) => b.selectPollfds(buffer, n, 0)],
  ] as const) {
    it(`${name} writes revents into the PollFdArray's own memory, only for the first nfds entries`, () => {
      const { client, server } = connectedPair(res, 'socketpair');
      b.send(server, Buffer.from('x'));
      const entries = new PollFdArray(4);
      entries.push(client, C.POLLIN);
      entries.push(server, C.POLLOUT);
      entries.push(client, C.POLLIN); // Past nfds below: must stay untouched.
      const memory = entries.buffer;
      const raw = new Uint16Array(memory);
      const reventsSlot = (i: number): number => (i * C.POLLFD_SIZE + C.POLLFD_EVENTS_OFFSET) / 2 + 1;
      for (let i = 0; i < 3; i++) raw[reventsSlot(i)] = SENTINEL;

      assert.equal(wait(memory, 2), 2);
      assert.equal(entries.buffer, memory, 'no new memory');
      assert.equal(raw[reventsSlot(0)], C.POLLIN);
      assert.equal(raw[reventsSlot(1)], C.POLLOUT);
      assert.equal(raw[reventsSlot(2)], SENTINEL, 'an entry past nfds is not touched');
      // The next wait reuses the same entries: revents are overwritten, not accumulated.
      b.recv(client, Buffer.alloc(4));
      assert.equal(wait(memory, 2), 1);
      assert.equal(raw[reventsSlot(0)], 0);
      assert.equal(raw[reventsSlot(1)], C.POLLOUT);
    });
  }

  it('poll skips entries with a negative fd and reports POLLNVAL for a closed one', () => {
    const { client } = connectedPair(res, 'socketpair');
    const closed = b.socket(C.AF_INET, C.SOCK_STREAM);
    b.close(closed);
    const entries = new PollFdArray(3);
    entries.push(-1, C.POLLIN | C.POLLOUT);
    entries.push(client, C.POLLOUT);
    entries.push(closed, C.POLLIN);
    assert.equal(b.poll!(entries.buffer, entries.length, 0), 2);
    assert.equal(entries.revents(0), 0);
    assert.equal(entries.revents(1), C.POLLOUT);
    assert.equal(entries.revents(2), C.POLLNVAL);
  });

  it('selectPollfds skips negative fds too, and a closed fd is EBADF (select has no POLLNVAL)', () => {
    const { client } = connectedPair(res, 'socketpair');
    const entries = new PollFdArray(2);
    entries.push(-1, C.POLLIN);
    entries.push(client, C.POLLOUT);
    assert.equal(b.selectPollfds(entries.buffer, entries.length, 0), 1);
    assert.equal(entries.revents(1), C.POLLOUT);
    const closed = b.socket(C.AF_INET, C.SOCK_STREAM);
    b.close(closed);
    entries.set(0, closed, C.POLLIN);
    assertSystemError(() => b.selectPollfds(entries.buffer, entries.length, 0), 'EBADF', 'select');
    assertSystemError(() => b.select([closed], null, null, 0), 'EBADF', 'select');
  });

  it('poll and selectPollfds with nfds = 0 just wait out the timeout', () => {
    const entries = new PollFdArray(1);
    assert.equal(b.poll!(entries.buffer, 0, 5), 0);
    assert.equal(b.selectPollfds(entries.buffer, 0, 5), 0);
    assert.deepEqual(b.select([], [], [], 5), [[], [], []]);
  });

  it('epoll_wait writes [data, events] pairs into the caller\'s array and nothing past them', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    const epfd = res.fd(b.epoll_create1!());
    b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, client, C.EPOLLOUT!, 11);
    b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, server, C.EPOLLOUT!, 22);
    const out = new Int32Array(8).fill(SENTINEL);
    assert.equal(b.epoll_wait!(epfd, out, 4, 0), 2);
    const pairs = [[out[0], out[1]], [out[2], out[3]]].sort((x, y) => x[0] - y[0]);
    assert.deepEqual(pairs, [[11, C.EPOLLOUT], [22, C.EPOLLOUT]]);
    assert.deepEqual([...out.subarray(4)], [SENTINEL, SENTINEL, SENTINEL, SENTINEL]);
  });

  it('epoll_wait takes the array at an offset (a subarray view) and writes there', () => {
    const { client } = connectedPair(res, 'socketpair');
    const epfd = res.fd(b.epoll_create1!());
    b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, client, C.EPOLLOUT!, 7);
    const whole = new Int32Array(6).fill(-1);
    assert.equal(b.epoll_wait!(epfd, whole.subarray(2), 2, 0), 1);
    assert.deepEqual([...whole], [-1, -1, 7, C.EPOLLOUT!, -1, -1]);
  });
});

// ---------------------------------------------------------------------------------------------
// epoll: tokens, flags and the kernel's rules.

describe('native readiness: epoll tokens, flags and errors', () => {
  releaseAfterEach(res);

  function epoll(): number {
    return res.fd(b.epoll_create1!());
  }

  function waitAll(epfd: number, timeoutMs = 0, max = 8): Array<[number, number]> {
    const out = new Int32Array(2 * max);
    const n = b.epoll_wait!(epfd, out, max, timeoutMs);
    const pairs: Array<[number, number]> = [];
    for (let i = 0; i < n; i++) pairs.push([out[2 * i], out[2 * i + 1]]);
    return pairs;
  }

  it('the data token round-trips: the fd by default, any 32-bit value when given, changed by MOD', () => {
    const { client } = connectedPair(res, 'socketpair');
    const epfd = epoll();
    b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, client, C.EPOLLOUT!);
    assert.deepEqual(waitAll(epfd), [[client, C.EPOLLOUT]]);

    const unsigned = new Uint32Array(2);
    b.epoll_ctl!(epfd, C.EPOLL_CTL_MOD!, client, C.EPOLLOUT!, 0xdeadbeef);
    assert.equal(b.epoll_wait!(epfd, unsigned, 1, 0), 1);
    assert.equal(unsigned[0], 0xdeadbeef);
    b.epoll_ctl!(epfd, C.EPOLL_CTL_MOD!, client, C.EPOLLOUT!, -2);
    assert.deepEqual(waitAll(epfd), [[-2, C.EPOLLOUT]]);
    b.epoll_ctl!(epfd, C.EPOLL_CTL_MOD!, client, C.EPOLLOUT!, 0);
    assert.deepEqual(waitAll(epfd), [[0, C.EPOLLOUT]]);
  });

  it('level-triggered (the default): reported on every wait while data remains', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    const epfd = epoll();
    b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, client, C.EPOLLIN!);
    b.send(server, Buffer.from('abc'));
    assert.deepEqual(waitAll(epfd), [[client, C.EPOLLIN]]);
    assert.deepEqual(waitAll(epfd), [[client, C.EPOLLIN]]);
  });

  it('edge-triggered (EPOLLET): one wake-up per arrival, even when data remains', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    const epfd = epoll();
    b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, client, C.EPOLLIN! | C.EPOLLET!);
    b.send(server, Buffer.from('abc'));
    assert.deepEqual(waitAll(epfd), [[client, C.EPOLLIN]]);
    assert.deepEqual(waitAll(epfd), [], 'the data is still there, but no new edge');
    assert.equal(b.recv(client, Buffer.alloc(1)), 1); // A partial read is no edge either.
    assert.deepEqual(waitAll(epfd), []);
    b.send(server, Buffer.from('d'));
    assert.deepEqual(waitAll(epfd), [[client, C.EPOLLIN]]);
  });

  it('EPOLLONESHOT: one report, then silence until MOD re-arms it', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    const epfd = epoll();
    b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, client, C.EPOLLIN! | C.EPOLLONESHOT!);
    b.send(server, Buffer.from('a'));
    assert.deepEqual(waitAll(epfd), [[client, C.EPOLLIN]]);
    b.send(server, Buffer.from('b'));
    assert.deepEqual(waitAll(epfd), [], 'disarmed');
    b.epoll_ctl!(epfd, C.EPOLL_CTL_MOD!, client, C.EPOLLIN! | C.EPOLLONESHOT!);
    assert.deepEqual(waitAll(epfd), [[client, C.EPOLLIN]]);
  });

  it('EPOLLRDHUP is reported when asked for, and only then', () => {
    const { client, server } = connectedPair(res, 'tcp4');
    const asked = epoll();
    const notAsked = epoll();
    b.epoll_ctl!(asked, C.EPOLL_CTL_ADD!, client, C.EPOLLIN! | C.EPOLLRDHUP!);
    b.epoll_ctl!(notAsked, C.EPOLL_CTL_ADD!, client, C.EPOLLIN!);
    b.shutdown(server, C.SHUT_WR);
    settle(client, C.POLLIN);
    assert.deepEqual(waitAll(asked), [[client, C.EPOLLIN! | C.EPOLLRDHUP!]]);
    assert.deepEqual(waitAll(notAsked), [[client, C.EPOLLIN]]);
  });

  it('EPOLLHUP and EPOLLERR are reported without being asked for', () => {
    const { client, server } = connectedPair(res, 'tcp4');
    const epfd = epoll();
    b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, client, 0);
    assert.deepEqual(waitAll(epfd), []);
    b.setsockopt(server, C.SOL_SOCKET, C.SO_LINGER, { onoff: true, linger: 0 });
    res.close(server);
    settle(client, C.POLLERR);
    assert.deepEqual(waitAll(epfd), [[client, C.EPOLLERR! | C.EPOLLHUP!]]);
  });

  it('EPOLLEXCLUSIVE is accepted by ADD and reports as usual; MOD with it is EINVAL (kernel rule)', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    const epfd = epoll();
    b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, client, C.EPOLLIN! | C.EPOLLEXCLUSIVE!);
    b.send(server, Buffer.from('x'));
    assert.deepEqual(waitAll(epfd), [[client, C.EPOLLIN]]);
    assertSystemError(() => b.epoll_ctl!(epfd, C.EPOLL_CTL_MOD!, client, C.EPOLLIN! | C.EPOLLEXCLUSIVE!), 'EINVAL', 'epoll_ctl');
    // An exclusive registration cannot be modified at all, even without the flag; DEL still works.
    assertSystemError(() => b.epoll_ctl!(epfd, C.EPOLL_CTL_MOD!, client, C.EPOLLIN!), 'EINVAL', 'epoll_ctl');
    b.epoll_ctl!(epfd, C.EPOLL_CTL_DEL!, client);
    // EXCLUSIVE and ONESHOT do not go together.
    assertSystemError(() => b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, client, C.EPOLLIN! | C.EPOLLEXCLUSIVE! | C.EPOLLONESHOT!),
      'EINVAL', 'epoll_ctl');
  });

  it('EPOLLEXCLUSIVE: one event wakes one of several epoll instances waiting on the same socket', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    const waiters = [epoll(), epoll(), epoll()];
    for (const epfd of waiters) b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, client, C.EPOLLIN! | C.EPOLLEXCLUSIVE!);
    // The exclusivity applies to wake-ups of sleeping waiters; a non-blocking check still sees
    // the level, so all three report it: what EXCLUSIVE changes is who is woken, not what is true.
    b.send(server, Buffer.from('x'));
    for (const epfd of waiters) assert.deepEqual(waitAll(epfd), [[client, C.EPOLLIN]]);
  });

  it('EPOLLWAKEUP and EPOLLPRI are accepted; EPOLLPRI reports urgent data', () => {
    const { client, server } = connectedPair(res, 'tcp4');
    const epfd = epoll();
    b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, client, C.EPOLLPRI! | C.EPOLLWAKEUP!);
    assert.deepEqual(waitAll(epfd), []);
    b.send(server, Buffer.from('!'), 0, 1, C.MSG_OOB);
    settle(client, C.POLLPRI);
    assert.deepEqual(waitAll(epfd), [[client, C.EPOLLPRI]]);
  });

  it('maxevents below the number ready: the rest come on the next wait', () => {
    const epfd = epoll();
    const fds: number[] = [];
    for (let i = 0; i < 3; i++) {
      const { client } = connectedPair(res, 'socketpair');
      fds.push(client);
      b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, client, C.EPOLLOUT!);
    }
    const first = waitAll(epfd, 0, 2);
    assert.equal(first.length, 2);
    const second = waitAll(epfd, 0, 2);
    const seen = new Set([...first, ...second].map(([data]) => data));
    assert.deepEqual([...seen].sort(), [...fds].sort(), 'every ready descriptor is reported within two waits');
  });

  it('the epoll descriptor itself is readable (to poll) while it has events: how a reactor joins another loop', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    const epfd = epoll();
    b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, client, C.EPOLLIN!);
    const outer = new PollFdArray(1);
    outer.push(epfd, C.POLLIN);
    assert.equal(b.poll!(outer.buffer, 1, 0), 0);
    b.send(server, Buffer.from('x'));
    assert.equal(b.poll!(outer.buffer, 1, 0), 1);
    assert.equal(outer.revents(0), C.POLLIN);
  });

  it('closing a registered descriptor removes its registration', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    const epfd = epoll();
    b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, client, C.EPOLLOUT!);
    b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, server, C.EPOLLOUT!);
    res.close(client);
    assert.deepEqual(waitAll(epfd).map(([data]) => data), [server]);
  });

  it('epoll_ctl errors: EEXIST, ENOENT, EBADF, EPERM for a regular file, EINVAL for itself, ELOOP for a cycle', () => {
    const { client } = connectedPair(res, 'socketpair');
    const epfd = epoll();
    b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, client, C.EPOLLIN!);
    assertSystemError(() => b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, client, C.EPOLLIN!), 'EEXIST', 'epoll_ctl');
    const other = connectedPair(res, 'socketpair').client;
    assertSystemError(() => b.epoll_ctl!(epfd, C.EPOLL_CTL_MOD!, other, C.EPOLLIN!), 'ENOENT', 'epoll_ctl');
    assertSystemError(() => b.epoll_ctl!(epfd, C.EPOLL_CTL_DEL!, other), 'ENOENT', 'epoll_ctl');
    const closed = b.socket(C.AF_INET, C.SOCK_STREAM);
    b.close(closed);
    assertSystemError(() => b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, closed, C.EPOLLIN!), 'EBADF', 'epoll_ctl');
    assertSystemError(() => b.epoll_ctl!(closed, C.EPOLL_CTL_ADD!, client, C.EPOLLIN!), 'EBADF', 'epoll_ctl');
    const file = fs.openSync('/dev/null', 'r');
    const regular = fs.openSync(__filename, 'r');
    try {
      assertSystemError(() => b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, regular, C.EPOLLIN!), 'EPERM', 'epoll_ctl');
      assertSystemError(() => b.epoll_ctl!(file, C.EPOLL_CTL_ADD!, client, C.EPOLLIN!), 'EINVAL', 'epoll_ctl');
    } finally {
      fs.closeSync(file);
      fs.closeSync(regular);
    }
    assertSystemError(() => b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, epfd, C.EPOLLIN!), 'EINVAL', 'epoll_ctl');
    const second = epoll();
    b.epoll_ctl!(second, C.EPOLL_CTL_ADD!, epfd, C.EPOLLIN!);
    assertSystemError(() => b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, second, C.EPOLLIN!), 'ELOOP', 'epoll_ctl');
  });

  it('epoll_wait on a descriptor that is not an epoll instance is EINVAL; on a closed one, EBADF', () => {
    const { client } = connectedPair(res, 'socketpair');
    assertSystemError(() => b.epoll_wait!(client, new Int32Array(2), 1, 0), 'EINVAL', 'epoll_wait');
    const closed = b.epoll_create1!();
    b.close(closed);
    assertSystemError(() => b.epoll_wait!(closed, new Int32Array(2), 1, 0), 'EBADF', 'epoll_wait');
  });

  it('epoll_create1 with a flag it does not know is EINVAL', () => {
    assertSystemError(() => b.epoll_create1!(1), 'EINVAL', 'epoll_create1');
  });
});

// ---------------------------------------------------------------------------------------------
// FD_SETSIZE: select cannot hold descriptors at or above it; poll and epoll can.

describe('native readiness: descriptors at and above FD_SETSIZE', () => {
  releaseAfterEach(res);

  const NEEDED = C.FD_SETSIZE + 64;
  const fillers: number[] = [];
  let low = -1; // FD_SETSIZE - 1: the last descriptor select can watch.
  let high = -1; // FD_SETSIZE: the first it cannot.

  before(function () {
    const limit = descriptorLimit();
    assert.ok(limit >= NEEDED,
      `these tests need RLIMIT_NOFILE >= ${NEEDED} (ulimit -n) to open a socket at fd ${C.FD_SETSIZE}; it is ${limit}`);
    // Fill every free number below FD_SETSIZE - 1 (open() takes the lowest free one) …
    for (let fd = fs.openSync('/dev/null', 'r'); ; fd = fs.openSync('/dev/null', 'r')) {
      fillers.push(fd);
      assert.ok(fd <= C.FD_SETSIZE - 2, `fd ${fd} is already past FD_SETSIZE - 2: something else holds the numbers`);
      if (fd === C.FD_SETSIZE - 2) break;
    }
    // … so a socketpair lands exactly on FD_SETSIZE - 1 and FD_SETSIZE.
    [low, high] = b.socketpair!(C.AF_UNIX, C.SOCK_STREAM | C.SOCK_NONBLOCK!);
    for (const fd of fillers) fs.closeSync(fd);
    fillers.length = 0;
  });

  after(() => {
    if (low >= 0) b.close(low);
    if (high >= 0) b.close(high);
  });

  it(`the fixture holds a socket at fd ${C.FD_SETSIZE - 1} and at fd ${C.FD_SETSIZE}`, () => {
    assert.equal(low, C.FD_SETSIZE - 1);
    assert.equal(high, C.FD_SETSIZE);
  });

  it('select watches fd FD_SETSIZE - 1', () => {
    b.send(high, Buffer.from('x'));
    assert.deepEqual(b.select([low], [low], [low], 0), [[low], [low], []]);
    assert.equal(b.recv(low, Buffer.alloc(4)), 1);
  });

  it('select refuses fd FD_SETSIZE in any of its lists with a RangeError, and the process goes on', () => {
    const refused = (err: Error): boolean => err instanceof RangeError && err.message.includes(String(C.FD_SETSIZE));
    assert.throws(() => b.select([high], null, null, 0), refused);
    assert.throws(() => b.select(null, [high], null, 0), refused);
    assert.throws(() => b.select(null, null, [high], 0), refused);
    assert.throws(() => b.select([low, high], [], [], 0), refused);
    assert.throws(() => b.select([2 ** 31 - 1], null, null, 0), RangeError);
    // Nothing was written past an fd_set: select still works on a small descriptor.
    const { client } = connectedPair(res, 'socketpair');
    assert.deepEqual(b.select(null, [client], null, 0), [[], [client], []]);
  });

  it('selectPollfds refuses an entry with fd FD_SETSIZE with a RangeError and leaves revents alone', () => {
    const entries = new PollFdArray(2);
    entries.push(low, C.POLLOUT);
    entries.push(high, C.POLLOUT);
    new Uint16Array(entries.buffer)[(C.POLLFD_EVENTS_OFFSET) / 2 + 1] = 0x5a5a;
    assert.throws(() => b.selectPollfds(entries.buffer, entries.length, 0), RangeError);
    assert.equal(entries.revents(0), 0x5a5a, 'nothing was waited for or written');
    // The same array is fine once the entry is left out of nfds.
    assert.equal(b.selectPollfds(entries.buffer, 1, 0), 1);
    assert.equal(entries.revents(0), C.POLLOUT);
  });

  it('poll and epoll have no such limit: they report fd FD_SETSIZE', () => {
    const entries = new PollFdArray(1);
    entries.push(high, C.POLLOUT);
    assert.equal(b.poll!(entries.buffer, 1, 0), 1);
    assert.equal(entries.revents(0), C.POLLOUT);
    const epfd = res.fd(b.epoll_create1!());
    b.epoll_ctl!(epfd, C.EPOLL_CTL_ADD!, high, C.EPOLLOUT!);
    const out = new Int32Array(2);
    assert.equal(b.epoll_wait!(epfd, out, 1, 0), 1);
    assert.deepEqual([...out], [high, C.EPOLLOUT]);
  });
});

// ---------------------------------------------------------------------------------------------
// EINTR: a signal during a wait does not end it; the wait goes on with the time that is left.

describe('native readiness: a signal during a wait (EINTR)', () => {
  releaseAfterEach(res);

  /**
   * Starts a thread that, while the main thread is blocked in a wait, sends this process
   * SIGUSR2 after `signalAfterMs` and then (if `writeAfterMs` is given) writes a byte to `fd`.
   */
  function interruptLater(fd: number, signalAfterMs: number, writeAfterMs?: number): Worker {
    return new Worker(`
      const { workerData } = require('node:worker_threads');
      const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
      sleep(workerData.signalAfterMs);
      process.kill(process.pid, 'SIGUSR2');
      if (workerData.writeAfterMs !== undefined) {
        sleep(workerData.writeAfterMs);
        require('node:fs').writeSync(workerData.fd, 'x');
      }
    `, { eval: true, workerData: { fd, signalAfterMs, writeAfterMs } });
  }

  for (const mechanism of MECHANISMS) {
    it(`${mechanism.name}: interrupted by a signal, the wait resumes and reports the data that arrives later`, async () => {
      const { client, server } = connectedPair(res, 'socketpair');
      let signals = 0;
      const onSignal = (): void => {
        signals++;
      };
      process.on('SIGUSR2', onSignal);
      const signalled = new Promise((resolve) => process.once('SIGUSR2', resolve));
      try {
        const worker = interruptLater(server, 50, 50);
        const exited = new Promise((resolve) => worker.once('exit', resolve));
        const ready = mechanism.wait(client, READ, 10_000);
        assert.equal(await exited, 0);
        assert.deepEqual(ready, comparable({ readable: true, writable: false, priority: false, hangup: false, rdhup: false, error: false }, ready));
        // The signal was delivered during the wait: its handler runs now that JavaScript is free.
        await signalled;
        assert.equal(signals, 1);
      } finally {
        process.removeListener('SIGUSR2', onSignal);
      }
    });

    it(`${mechanism.name}: interrupted by a signal with nothing arriving, the wait still ends at its timeout with nothing`, async () => {
      const { client } = connectedPair(res, 'socketpair');
      let signals = 0;
      const onSignal = (): void => {
        signals++;
      };
      process.on('SIGUSR2', onSignal);
      const signalled = new Promise((resolve) => process.once('SIGUSR2', resolve));
      try {
        const worker = interruptLater(client, 30);
        const exited = new Promise((resolve) => worker.once('exit', resolve));
        assert.equal(mechanism.wait(client, READ, 150), null);
        assert.equal(await exited, 0);
        await signalled;
        assert.equal(signals, 1);
      } finally {
        process.removeListener('SIGUSR2', onSignal);
      }
    });
  }
});
