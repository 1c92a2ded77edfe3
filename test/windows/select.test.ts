/**
 * select() over Winsock: an fd_set is a counted array of socket handles there, so the limit is
 * on how many sockets a set holds (FD_SETSIZE, set to 1024 in native/platform.h), not on their
 * values; and a failed non-blocking connect is reported in the except set.
 */
import * as assert from 'node:assert/strict';
import { binding, constants, WaitMechanism } from '../../lib/native';
import { PollFdArray } from '../../lib/pollfds';
import { SelectSelector } from '../../lib/selectors/select';
import { EVENT_READ } from '../../lib/selectors/selector';
import { closedPort, socketsPerTest } from './loopback';

const { POLLIN, POLLOUT, POLLERR, FD_SETSIZE } = constants;
const SAFETY_MS = 5000;
/** Winsock retries a refused SYN before giving up (about 2 s on Windows; at once under Wine). */
const REFUSED_CONNECT_MS = 15000;

describe('select over Winsock (Windows)', () => {
  const { track, pair } = socketsPerTest();

  /** A non-blocking socket whose connect to a closed port is under way. */
  function refusedConnect(): number {
    const fd = track(binding.socket(constants.AF_INET, constants.SOCK_STREAM));
    binding.setNonBlocking(fd, true);
    assert.equal(binding.connect(fd, '127.0.0.1', closedPort()), false);
    return fd;
  }

  it('sorts sockets into readable, writable and idle as Python\'s select does', () => {
    const [a, b] = pair();
    const [c, d] = pair();
    binding.send(a, Buffer.from('x'));
    const [readable, writable, exceptional] = binding.select([b, d], [c], [d], SAFETY_MS);
    assert.deepEqual(readable, [b]);
    assert.deepEqual(writable, [c]);
    assert.deepEqual(exceptional, []);
  });

  it('returns three empty lists when the timeout expires on idle sockets', () => {
    const [a, b] = pair();
    assert.deepEqual(binding.select([a, b], null, null, 0), [[], [], []]);
    assert.deepEqual(binding.select([a, b], [], [], 10), [[], [], []]);
  });

  it('with three empty sets, waits out the timeout as POSIX select does (Winsock alone fails with EINVAL)', () => {
    assert.deepEqual(binding.select([], [], [], 5), [[], [], []]);
    assert.equal(binding.selectPollfds(new ArrayBuffer(constants.POLLFD_SIZE), 0, 5), 0);
  });

  it('FD_SETSIZE is a count: 1024 sockets per set, whatever their handle values', () => {
    assert.equal(FD_SETSIZE, 1024);
    // Handle values past FD_SETSIZE are not refused: Winsock itself judges them (not sockets here).
    assert.throws(() => binding.select([FD_SETSIZE * 64], null, null, 0), { code: 'ENOTSOCK', syscall: 'select' });
  });

  it('refuses more than FD_SETSIZE sockets in one set with a RangeError, before any system call', () => {
    const many = Array.from({ length: FD_SETSIZE + 1 }, (_, i) => 4 * (i + 1));
    assert.throws(() => binding.select(many, null, null, 0), RangeError);
    assert.throws(() => binding.select(null, many, null, 0), RangeError);
    assert.throws(() => binding.select(null, null, many, 0), RangeError);
    const entries = new PollFdArray(FD_SETSIZE + 1);
    for (const fd of many) entries.push(fd, POLLIN);
    assert.throws(() => binding.selectPollfds(entries.buffer, entries.length, 0), RangeError);
  });

  it('SelectSelector refuses the registration past FD_SETSIZE sockets with a RangeError, and rolls it back', () => {
    const selector = new SelectSelector<number>();
    try {
      // register() makes no system call for select, so handle numbers stand in for sockets.
      for (let i = 1; i <= FD_SETSIZE; i++) selector.register(4 * i, EVENT_READ, i);
      assert.throws(() => selector.register(4 * (FD_SETSIZE + 1), EVENT_READ, 0), RangeError);
      assert.equal(selector.keys.size, FD_SETSIZE);
      assert.equal(selector.getKey(4 * (FD_SETSIZE + 1)), undefined);
    } finally {
      selector.close();
    }
  });

  it('a helper thread\'s select wait takes at most FD_SETSIZE - 1 sockets: its wake-up socket always fits', async () => {
    // FD_SET on a full Winsock set drops the socket without a word: a wait whose wake-up socket
    // was dropped could never be woken (nor closed). So 1023 sockets, plus the wake-up one, wait
    // and are woken; a 1024th is refused before any wait.
    const entries = new PollFdArray(FD_SETSIZE);
    for (let i = 0; i < FD_SETSIZE - 1; i++) {
      const fd = track(binding.socket(constants.AF_INET, constants.SOCK_DGRAM));
      binding.bind(fd, '127.0.0.1', 0);
      entries.push(fd, POLLIN);
    }
    let ended: (errno: number) => void = () => undefined;
    const thread = new binding.WaitThread((errno) => ended(errno));
    try {
      const woken = new Promise<number>((resolve) => { ended = resolve; });
      thread.arm(WaitMechanism.Select, entries.buffer, entries.length, -1, -1);
      thread.wake();
      assert.equal(await woken, 0);
      const extra = track(binding.socket(constants.AF_INET, constants.SOCK_DGRAM));
      entries.push(extra, POLLIN);
      assert.throws(() => thread.arm(WaitMechanism.Select, entries.buffer, entries.length, -1, -1),
        { name: 'RangeError', message: /at most 1023 sockets/ });
    } finally {
      thread.close();
    }
  });

  it('a failed non-blocking connect shows in the except set, and SO_ERROR reads ECONNREFUSED', () => {
    const fd = refusedConnect();
    const [, writable, exceptional] = binding.select(null, [fd], [fd], REFUSED_CONNECT_MS);
    assert.deepEqual(writable, []);
    assert.deepEqual(exceptional, [fd]);
    assert.equal(binding.getsockopt(fd, constants.SOL_SOCKET, constants.SO_ERROR), constants.errno.ECONNREFUSED);
  });

  it('selectPollfds turns that except-set report into POLLERR for a POLLOUT interest', () => {
    const fd = refusedConnect();
    const entries = new PollFdArray(1);
    entries.push(fd, POLLOUT);
    assert.equal(binding.selectPollfds(entries.buffer, 1, REFUSED_CONNECT_MS), 1);
    assert.equal(entries.revents(0) & POLLERR, POLLERR);
  });
});
