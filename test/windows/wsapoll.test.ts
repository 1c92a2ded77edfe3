/**
 * WSAPoll as Windows documents it (WSAPoll and WSAPOLLFD on Microsoft Learn), on real loopback TCP
 * sockets: Windows has no socketpair. Runs under `npm run test:windows` (Wine) or on Windows.
 */
import * as assert from 'node:assert/strict';
import { binding, constants } from '../../lib/native';
import { PollFdArray } from '../../lib/pollfds';
import { socketsPerTest } from './loopback';
import { underWine } from './wine';
import { skipUnless } from '../skip';

const { POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, POLLHUP, POLLNVAL } = constants;
const wsapoll = binding.wsapoll!;
/** Bounds every wait that should end early, so a bug fails instead of hanging. */
const SAFETY_MS = 5000;

describe('WSAPoll (Windows)', () => {
  const { track, untrack, pair, listener: listening } = socketsPerTest();
  let entries: PollFdArray;

  beforeEach(() => {
    entries = new PollFdArray(4);
  });

  /** WSAPoll on one socket; returns [count, revents]. */
  function pollOne(fd: number, events: number, timeoutMs: number): [number, number] {
    entries.clear();
    entries.push(fd, events);
    const n = wsapoll(entries.buffer, 1, timeoutMs);
    return [n, entries.revents(0)];
  }

  it('is what this platform offers instead of poll and epoll', () => {
    assert.equal(binding.platform, 'win32');
    assert.equal(typeof binding.wsapoll, 'function');
    assert.equal(binding.poll, undefined);
    assert.equal(binding.epoll_wait, undefined);
    assert.equal(binding.socketpair, undefined);
    // WSAPOLLFD holds a 64-bit SOCKET, so PollFdArray lays entries out 16 bytes apart.
    assert.equal(constants.POLLFD_SIZE, 16);
    assert.equal(constants.POLLFD_EVENTS_OFFSET, 8);
  });

  it('idle connection: returns 0 and leaves revents 0 when the timeout expires', () => {
    const [client] = pair();
    assert.deepEqual(pollOne(client, POLLIN, 0), [0, 0]);
    assert.deepEqual(pollOne(client, POLLIN, 20), [0, 0]);
  });

  it('readable: arriving data sets POLLRDNORM', () => {
    const [client, server] = pair();
    binding.send(client, Buffer.from('ping'));
    assert.deepEqual(pollOne(server, POLLIN, SAFETY_MS), [1, POLLRDNORM]);
  });

  it('writable: a connected socket with room to send reports POLLWRNORM', () => {
    const [client] = pair();
    assert.deepEqual(pollOne(client, POLLOUT, SAFETY_MS), [1, POLLWRNORM]);
  });

  it('listening socket: a pending connection sets POLLRDNORM (accept will not block)', () => {
    const listener = listening();
    assert.deepEqual(pollOne(listener, POLLIN, 0), [0, 0]);
    const client = track(binding.socket(constants.AF_INET, constants.SOCK_STREAM));
    binding.connect(client, '127.0.0.1', binding.getsockname(listener).port);
    assert.deepEqual(pollOne(listener, POLLIN, SAFETY_MS), [1, POLLRDNORM]);
    assert.ok(track(binding.accept(listener)) >= 0);
  });

  it('peer close: a graceful disconnect sets POLLHUP, and recv then returns 0', () => {
    const [client, server] = pair();
    untrack(client);
    binding.close(client);
    const [n, revents] = pollOne(server, POLLIN, SAFETY_MS);
    assert.equal(n, 1);
    assert.equal(revents & POLLHUP, POLLHUP, `revents 0x${revents.toString(16)}`);
    assert.equal(binding.recv(server, Buffer.alloc(8)), 0);
  });

  it('reports several sockets in one call and counts only the entries with revents', () => {
    const [a, b] = pair();
    const [c, d] = pair();
    binding.send(a, Buffer.from('x'));
    entries.push(b, POLLIN); // ready
    entries.push(d, POLLIN); // idle
    entries.push(c, POLLOUT); // ready
    assert.equal(wsapoll(entries.buffer, entries.length, SAFETY_MS), 2);
    assert.equal(entries.revents(0), POLLRDNORM);
    assert.equal(entries.revents(1), 0);
    assert.equal(entries.revents(2), POLLWRNORM);
  });

  it('ignores an entry whose fd is negative and clears its revents', function () {
    skipUnless(this, !underWine, "Windows documents this (WSAPOLLFD); Wine 8 instead reports POLLNVAL in that entry's revents");
    const [client] = pair();
    entries.push(-1, POLLIN | POLLOUT);
    entries.push(client, POLLOUT);
    assert.equal(wsapoll(entries.buffer, 2, SAFETY_MS), 1);
    assert.equal(entries.revents(0), 0);
    assert.equal(entries.revents(1), POLLWRNORM);
  });

  it('with no socket to watch, waits out the timeout and returns 0 as poll() does (WSAPoll alone fails with EINVAL)', () => {
    entries.push(-1, POLLIN);
    assert.equal(wsapoll(entries.buffer, 1, 5), 0);
    assert.equal(wsapoll(new ArrayBuffer(constants.POLLFD_SIZE), 0, 5), 0);
  });

  it('waits in the caller-owned array in place: revents read back through PollFdArray', () => {
    const [client, server] = pair();
    const index = entries.push(server, POLLIN);
    binding.send(client, Buffer.from('in place'));
    wsapoll(entries.buffer, entries.length, SAFETY_MS);
    assert.equal(entries.revents(index), POLLRDNORM);
    assert.equal(entries.fd(index), server);
    assert.equal(entries.events(index), POLLIN);
  });

  it('refuses bad arguments with TypeError and RangeError before waiting', () => {
    assert.throws(() => wsapoll([] as unknown as ArrayBuffer, 0, 0), TypeError);
    assert.throws(() => wsapoll(entries.buffer, 5, 0), RangeError); // capacity is 4
    assert.throws(() => wsapoll(entries.buffer, -1, 0), RangeError);
    assert.throws(() => wsapoll(entries.buffer, 0, Number.NaN), TypeError);
    assert.throws(() => wsapoll(new Uint8Array(new ArrayBuffer(40), 4), 1, 0), RangeError); // misaligned
  });

  it('a closed socket handle is reported as POLLNVAL', function () {
    skipUnless(this, !underWine, 'Windows documents POLLNVAL for "an invalid socket was used"; Wine fails the whole call instead');
    const [client] = pair();
    untrack(client);
    binding.close(client);
    const [n, revents] = pollOne(client, POLLIN, 0);
    assert.equal(n, 1);
    assert.equal(revents & POLLNVAL, POLLNVAL);
  });
});

