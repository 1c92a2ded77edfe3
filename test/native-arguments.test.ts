/**
 * Every exported binding, called with wrong types and out-of-range values: each must throw a
 * TypeError or a RangeError before it touches the kernel, and the process must survive all of it.
 * The table is keyed by export name and checked against Object.keys(binding), so a new binding
 * without an entry fails here. A second pass throws random argument lists at every binding in a
 * child process, where a crash shows up as a failed test instead of a dead test runner.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { inspect } from 'node:util';
import { WaitMechanism, binding as b, constants as C } from '../lib/native';
import { PollFdArray } from '../lib/pollfds';
import {
  ResizableArrayBuffer,
  Resources,
  abstractName,
  boundSocket,
  connectedPair,
  listener,
  releaseAfterEach,
  resizableBuffer,
} from './fixtures/sockets';
import { skipUnless } from './skip';

const res = new Resources();
const NONBLOCK = C.SOCK_NONBLOCK!;

// ---------------------------------------------------------------------------------------------
// Kinds of parameter: the values of the wrong type and the values out of range for each.

interface Kind {
  /** Each must throw TypeError. */
  typeErrors: unknown[];
  /** Each must throw RangeError; computed from the other (valid) arguments when it depends on them. */
  rangeErrors?: (args: unknown[]) => unknown[];
}

const NOT_NUMBERS: unknown[] = ['7', '', {}, [], [7], true, null, 7n, Symbol('seven'), () => 7, new Number(7)];
const NOT_INTEGERS: unknown[] = [NaN, 0.5, -0.5, 2 ** 31 - 0.5, Infinity, -Infinity];
const INT32_OUT: unknown[] = [2 ** 31, -(2 ** 31) - 1, 2 ** 53, -(2 ** 64)];

function integer(required: boolean, rangeErrors: unknown[] | ((args: unknown[]) => unknown[])): Kind {
  return {
    typeErrors: [...NOT_NUMBERS, ...NOT_INTEGERS, ...(required ? [undefined] : [])],
    rangeErrors: typeof rangeErrors === 'function' ? rangeErrors : () => rangeErrors,
  };
}

function byteLength(memory: unknown): number {
  return (memory as ArrayBufferView | ArrayBuffer).byteLength;
}

const MISALIGNED = (): Uint8Array => new Uint8Array(new ArrayBuffer(17), 1);
const NOT_MEMORY: unknown[] = ['bytes', 16, {}, [0, 1], null, undefined, true, Symbol('m'), new SharedArrayBuffer(8)];

const K = {
  fd: integer(true, [-1, 2 ** 31, 2 ** 53, -(2 ** 53)]),
  int32: integer(true, INT32_OUT),
  protocol: integer(false, [-1, 2 ** 31]),
  backlog: integer(false, [-1, 2 ** 31]),
  flags: integer(false, [-1, 2 ** 31]),
  how: integer(true, [-1, 3, 2 ** 31]),
  port: integer(true, [-1, 65536, 70000, 2 ** 31]),
  optionalBoolean: { typeErrors: [1, 0, 'true', {}, null, Symbol('b')] } as Kind,
  boolean: { typeErrors: [1, 0, 'true', {}, null, undefined] } as Kind,
  buffer: { typeErrors: NOT_MEMORY } as Kind,
  // Offsets and lengths are relative to the buffer two and three places before / after.
  offset: integer(false, (args) => [-1, byteLength(args[1]) + 1, 2 ** 31]),
  length: integer(false, (args) => [-1, byteLength(args[1]) + 1, 2 ** 31]),
  host: {
    // A host must be a numeric address of the socket's family; anything else is the wrong value.
    typeErrors: [7, {}, null, undefined, true, Symbol('h'), '', 'localhost', '256.0.0.1', 'not an address', '::1'],
  } as Kind,
  host6: { typeErrors: [7, null, undefined, '', '127.0.0.1', ':::', 'localhost'] } as Kind,
  path: {
    typeErrors: [7, null, undefined, {}, Buffer.from('name'), Symbol('p')],
    // sun_path holds 108 bytes: 107 and a NUL for a path, 108 for an abstract name. Bytes, not characters.
    rangeErrors: () => ['', 'x'.repeat(108), 'é'.repeat(54), `\0${'x'.repeat(108)}`],
  } as Kind,
  intOption: {
    typeErrors: ['1', {}, null, undefined, 1.5, NaN, 1n, Symbol('v'), [1]],
    rangeErrors: () => INT32_OUT,
  } as Kind,
  linger: {
    typeErrors: [5, 'x', null, undefined, true, {}, { onoff: true }, { linger: 1 }, { onoff: 'yes', linger: 1 },
      { onoff: true, linger: '1' }, { onoff: true, linger: 1.5 }, { onoff: true, linger: NaN }],
    rangeErrors: () => [{ onoff: true, linger: -1 }, { onoff: true, linger: 65536 }, { onoff: false, linger: 2 ** 31 }],
  } as Kind,
  timeoutOption: integer(true, [-1, 2 ** 31]),
  device: { typeErrors: [5, null, undefined, {}, true, Symbol('d')] } as Kind,
  fdList: {
    typeErrors: ['3', 3, {}, new Int32Array(1), true, ['3'], [0.5], [NaN], [null], [undefined], [{}], [true], [3n]],
    rangeErrors: () => [[-1], [C.FD_SETSIZE], [2 ** 31], [2 ** 53], [0, -5]],
  } as Kind,
  timeout: { typeErrors: ['5', {}, [], true, NaN, 1n, Symbol('t')] } as Kind,
  pollfds: { typeErrors: NOT_MEMORY, rangeErrors: () => [MISALIGNED()] } as Kind,
  nfds: nfdsAfter(0),
  epollEvents: { typeErrors: NOT_MEMORY, rangeErrors: () => [MISALIGNED(), new Int32Array(1), new Int32Array(0)] } as Kind,
  maxevents: integer(true, (args) => [0, -1, byteLength(args[1]) / 8 + 1, 2 ** 31]),
  op: integer(true, [0, 4, -1]),
  epollMask: integer(false, [2 ** 32, -(2 ** 31) - 1]),
  epollData: integer(false, [2 ** 32, -(2 ** 31) - 1]),
  epollCreateFlags: integer(false, [-1, 2 ** 31]),
  onReady: { typeErrors: [undefined, null, 5, 'onReady', {}, Symbol('f')] } as Kind,
  mechanism: integer(true, [-1, 3, 2 ** 31]),
  chunks: {
    typeErrors: ['chunks', 5, {}, null, undefined, Buffer.alloc(8), new Uint8Array(8), { length: 3, 0: Buffer.alloc(8) },
      new Set([Buffer.alloc(8)]), chunksWith(0, 5), chunksWith(1, 'x'), chunksWith(2, null), chunksWith(1, undefined),
      chunksWith(1, new ArrayBuffer(4)), chunksWith(1, new SharedArrayBuffer(4)), chunksWith(2, {}),
      chunksWith(1, [Buffer.alloc(1)]), chunksWith(1, 7n), chunksWith(1)],
  } as Kind,
  // first, count and firstOffset are relative to the chunks before them (args[1]) and to first (args[2]).
  first: integer(false, (args) => [-1, (args[1] as unknown[]).length + 1, 2 ** 31]),
  count: integer(false, (args) => [-1, (args[1] as unknown[]).length - (args[2] as number) + 1, 2 ** 31]),
  firstOffset: integer(false, (args) => [-1, byteLength((args[1] as unknown[])[args[2] as number]) + 1, 2 ** 53]),
  fileOffset: integer(true, [-1, 2 ** 53, -(2 ** 53), 2 ** 64]),
  fileLength: integer(true, [-1, 2 ** 53, 2 ** 64]),
  fileChunk: integer(false, [0, -1, 2 ** 53, 2 ** 64]),
  receiveLength: integer(true, [0, -1, 2 ** 53, 2 ** 64]),
  pipeEnds: {
    typeErrors: ['3', 3, {}, null, undefined, [3], [3, 4, 5], [3, '4'], [0.5, 3], [3, null], new Int32Array(2), { 0: 3, 1: 4, length: 2 }],
    rangeErrors: () => [[-1, 3], [3, 2 ** 31], [3, -(2 ** 53)]],
  } as Kind,
  pipeSize: integer(false, [-1, 2 ** 31]),
  /** A parameter this form does not read (e.g. arm's epfd when it polls a pollfd array). */
  unread: { typeErrors: [] } as Kind,
  // io_uring: a 32-bit user_data or poll mask, required or optional.
  uint32: integer(true, [-1, 2 ** 32]),
  optionalUint32: integer(false, [-1, 2 ** 32]),
};

/** Three chunks a valid writev accepts, but with `bad` at `index` (no argument: a hole there). */
function chunksWith(index: number, ...bad: unknown[]): unknown[] {
  const chunks: unknown[] = [Buffer.alloc(8), Buffer.alloc(1), Buffer.alloc(1)];
  if (bad.length > 0) chunks[index] = bad[0];
  else delete chunks[index];
  return chunks;
}

/** nfds: at most the number of entries in the pollfd memory at args[memoryIndex]. */
function nfdsAfter(memoryIndex: number): Kind {
  return integer(true, (args) => [-1, byteLength(args[memoryIndex]) / C.POLLFD_SIZE + 1, 2 ** 31]);
}

// ---------------------------------------------------------------------------------------------
// The table: every binding, in each of its forms, with a factory of valid arguments.

interface Form {
  label: string;
  kinds: Kind[];
  /** Fresh valid arguments (non-blocking descriptors, so no call can wait). */
  valid(): unknown[];
  /** How the arguments are used; by default `binding[name](...args)`. */
  invoke?: (args: unknown[]) => unknown;
  /** Combinations of otherwise valid values that must still be refused. */
  combined?: Array<{ args: () => unknown[]; error: typeof TypeError | typeof RangeError }>;
}

const socketpair = (): number => connectedPair(res, 'socketpair').client;
const udp4 = (): { fd: number; port: number } => {
  const bound = boundSocket(res, 'tcp4', C.SOCK_DGRAM | NONBLOCK);
  return { fd: bound.fd, port: bound.endpoint[1] as number };
};
const unixDgram = (): number => res.fd(b.socket(C.AF_UNIX, C.SOCK_DGRAM | NONBLOCK));
const receiverName = (): string => boundSocket(res, 'abstract', C.SOCK_DGRAM | NONBLOCK).endpoint[0];
const pollfds = (): ArrayBuffer => {
  const entries = new PollFdArray(2);
  entries.push(socketpair(), C.POLLIN);
  return entries.buffer;
};
const bufferRange = (fd: () => number): Form => ({
  label: 'fd, buffer, offset, length, flags',
  kinds: [K.fd, K.buffer, K.offset, K.length, K.flags],
  valid: () => [fd(), Buffer.alloc(16), 0, 16, 0],
  combined: [
    { args: () => [fd(), Buffer.alloc(16), 8, 9], error: RangeError }, // Each fits; together they pass the end.
    { args: () => [fd(), Buffer.alloc(16), 17], error: RangeError },
    { args: () => [fd(), new Uint8Array(new ArrayBuffer(32), 24), 0, 9], error: RangeError }, // The view's end, not the buffer's.
  ],
});
const waitOnPollfds: Form[] = [{
  label: 'pollfds, nfds, timeoutMs',
  kinds: [K.pollfds, K.nfds, K.timeout],
  valid: () => [pollfds(), 1, 0],
  combined: [{ args: () => [new ArrayBuffer(7), 1, 0], error: RangeError }], // Less than one entry.
}];

/** A file of 16 bytes (written by the suite's before hook), opened for reading; released with the sockets. */
let dataDirectory = '';
const dataFile = (): number => res.fd(fs.openSync(path.join(dataDirectory, 'data'), 'r'));
const writableFile = (): number => res.fd(fs.openSync(path.join(dataDirectory, 'received'), 'w'));
const newPipe = (): [number, number] => {
  const ends = b.pipe!();
  ends.forEach((fd) => res.fd(fd));
  return ends;
};
const threeChunks = (): ArrayBufferView[] => [Buffer.alloc(8), new Uint16Array(2), new DataView(new ArrayBuffer(2))];

const TABLE: Record<string, Form[]> = {
  socket: [{ label: 'domain, type, protocol', kinds: [K.int32, K.int32, K.protocol], valid: () => [C.AF_INET, C.SOCK_STREAM | NONBLOCK, 0] }],
  socketpair: [{ label: 'domain, type, protocol', kinds: [K.int32, K.int32, K.protocol], valid: () => [C.AF_UNIX, C.SOCK_STREAM | NONBLOCK, 0] }],
  bind: [
    { label: 'IPv4 fd, host, port', kinds: [K.fd, K.host, K.port], valid: () => [res.fd(b.socket(C.AF_INET, C.SOCK_DGRAM)), '127.0.0.1', 0] },
    { label: 'IPv6 fd, host, port', kinds: [K.fd, K.host6, K.port], valid: () => [res.fd(b.socket(C.AF_INET6, C.SOCK_DGRAM)), '::1', 0] },
    { label: 'Unix fd, path', kinds: [K.fd, K.path], valid: () => [unixDgram(), abstractName()] },
  ],
  listen: [{
    label: 'fd, backlog',
    kinds: [K.fd, K.backlog],
    valid: () => [boundSocket(res, 'tcp4', C.SOCK_STREAM).fd, 8],
  }],
  accept: [{ label: 'fd, nonBlocking', kinds: [K.fd, K.optionalBoolean], valid: () => [nonBlockingListener(), true] }],
  acceptWithAddress: [{ label: 'fd, nonBlocking', kinds: [K.fd, K.optionalBoolean], valid: () => [nonBlockingListener(), false] }],
  connect: [
    {
      label: 'IPv4 fd, host, port',
      kinds: [K.fd, K.host, K.port],
      valid: () => [res.fd(b.socket(C.AF_INET, C.SOCK_DGRAM | NONBLOCK)), '127.0.0.1', udp4().port],
    },
    { label: 'Unix fd, path', kinds: [K.fd, K.path], valid: () => [unixDgram(), receiverName()] },
  ],
  recv: [bufferRange(socketpair)],
  send: [bufferRange(socketpair)],
  recvfrom: [bufferRange(() => udp4().fd)],
  writev: [{
    label: 'fd, chunks, first, count, firstOffset',
    kinds: [K.fd, K.chunks, K.first, K.count, K.firstOffset],
    valid: () => [socketpair(), threeChunks(), 0, 3, 2],
    combined: [
      { args: () => [socketpair(), threeChunks(), 2, 2], error: RangeError }, // Each fits; together they pass the end.
      { args: () => [socketpair(), threeChunks(), 3, 0, 1], error: RangeError }, // An offset into no chunk.
      { args: () => [socketpair(), threeChunks(), 1, 1, 5], error: RangeError }, // Past chunks[1], not chunks[0].
      { args: () => [socketpair(), [...threeChunks(), 'x'], 1], error: TypeError }, // The bad one is in the window.
    ],
  }],
  sendfile: [{
    label: 'outFd, inFd, offset, length, chunk',
    kinds: [K.fd, K.fd, K.fileOffset, K.fileLength, K.fileChunk],
    valid: () => [socketpair(), dataFile(), 0, 4, 2],
  }],
  recvfile: [{
    label: 'outFd, inFd, offset, length, pipe',
    kinds: [K.fd, K.fd, K.fileOffset, K.receiveLength, K.pipeEnds],
    valid: () => [writableFile(), socketpair(), 0, 4, newPipe()],
  }],
  pipe: [{ label: 'size', kinds: [K.pipeSize], valid: () => [65536] }],
  sendto: [
    {
      label: 'IPv4 fd, buffer, offset, length, flags, host, port',
      kinds: [K.fd, K.buffer, K.offset, K.length, K.flags, K.host, K.port],
      valid: () => [udp4().fd, Buffer.alloc(4), 0, 4, 0, '127.0.0.1', udp4().port],
    },
    {
      label: 'Unix fd, buffer, offset, length, flags, path',
      kinds: [K.fd, K.buffer, K.offset, K.length, K.flags, K.path],
      valid: () => [unixDgram(), Buffer.alloc(4), 0, 4, 0, receiverName()],
    },
  ],
  shutdown: [{ label: 'fd, how', kinds: [K.fd, K.how], valid: () => [socketpair(), C.SHUT_WR] }],
  close: [{ label: 'fd', kinds: [K.fd], valid: () => [res.fd(b.socket(C.AF_INET, C.SOCK_STREAM))] }],
  setNonBlocking: [{ label: 'fd, nonBlocking', kinds: [K.fd, K.boolean], valid: () => [socketpair(), true] }],
  getNonBlocking: [{ label: 'fd', kinds: [K.fd], valid: () => [socketpair()] }],
  getsockname: [{ label: 'fd', kinds: [K.fd], valid: () => [socketpair()] }],
  getpeername: [{ label: 'fd', kinds: [K.fd], valid: () => [socketpair()] }],
  setsockopt: [
    { label: 'fd, level, option, integer', kinds: [K.fd, K.int32, K.int32, K.intOption], valid: () => [socketpair(), C.SOL_SOCKET, C.SO_RCVBUF, 65536] },
    { label: 'fd, SOL_SOCKET, SO_LINGER, linger', kinds: [K.fd, K.int32, K.int32, K.linger], valid: () => [socketpair(), C.SOL_SOCKET, C.SO_LINGER, { onoff: false, linger: 0 }] },
    { label: 'fd, SOL_SOCKET, SO_RCVTIMEO, ms', kinds: [K.fd, K.int32, K.int32, K.timeoutOption], valid: () => [socketpair(), C.SOL_SOCKET, C.SO_RCVTIMEO, 100] },
    { label: 'fd, SOL_SOCKET, SO_SNDTIMEO, ms', kinds: [K.fd, K.int32, K.int32, K.timeoutOption], valid: () => [socketpair(), C.SOL_SOCKET, C.SO_SNDTIMEO, 100] },
    {
      label: 'fd, SOL_SOCKET, SO_BINDTODEVICE, name',
      kinds: [K.fd, K.int32, K.int32, K.device],
      valid: () => [res.fd(b.socket(C.AF_INET, C.SOCK_DGRAM)), C.SOL_SOCKET, C.SO_BINDTODEVICE, ''],
    },
  ],
  getsockopt: [{ label: 'fd, level, option', kinds: [K.fd, K.int32, K.int32], valid: () => [socketpair(), C.SOL_SOCKET, C.SO_TYPE] }],
  select: [{
    label: 'read, write, except, timeoutMs',
    kinds: [K.fdList, K.fdList, K.fdList, K.timeout],
    valid: () => [[socketpair()], [socketpair()], [], 0],
  }],
  selectPollfds: waitOnPollfds,
  poll: waitOnPollfds,
  wsapoll: waitOnPollfds,
  epoll_create1: [{ label: 'flags', kinds: [K.epollCreateFlags], valid: () => [0] }],
  epoll_ctl: [{
    label: 'epfd, op, fd, events, data',
    kinds: [K.fd, K.op, K.fd, K.epollMask, K.epollData],
    valid: () => [res.fd(b.epoll_create1!()), C.EPOLL_CTL_ADD, socketpair(), C.EPOLLIN, 0xffffffff],
  }],
  epoll_wait: [{
    label: 'epfd, events, maxevents, timeoutMs',
    kinds: [K.fd, K.epollEvents, K.maxevents, K.timeout],
    valid: () => [res.fd(b.epoll_create1!()), new Int32Array(8), 4, 0],
  }],
  WaitThread: [
    {
      label: 'new WaitThread(onReady)',
      kinds: [K.onReady],
      valid: () => [() => undefined],
      invoke: (args) => new b.WaitThread(...(args as [() => void])).close(),
    },
    {
      label: '.arm(Poll or Select, pollfds, nfds, unread epfd, timeoutMs)',
      kinds: [K.mechanism, K.pollfds, nfdsAfter(1), K.unread, K.timeout],
      valid: () => [WaitMechanism.Poll, pollfds(), 1, -1, 0],
      invoke: armFreshThread,
    },
    {
      label: '.arm(Epoll, unread pollfds, unread nfds, epfd, timeoutMs)',
      kinds: [K.mechanism, K.unread, K.unread, K.fd, K.timeout],
      valid: () => [WaitMechanism.Epoll, null, 0, res.fd(b.epoll_create1!()), 0],
      invoke: armFreshThread,
    },
  ],
  LoopWatcher: [
    {
      label: 'new LoopWatcher(epfd, onReady)',
      kinds: [K.fd, K.onReady],
      valid: () => [res.fd(b.epoll_create1!()), () => undefined],
      invoke: (args) => new b.LoopWatcher!(...(args as [number, () => void])).close(),
    },
    {
      label: '.setTimer(timeoutMs)',
      kinds: [K.timeout],
      valid: () => [0],
      invoke: (args) => {
        const watcher = new b.LoopWatcher!(res.fd(b.epoll_create1!()), () => undefined);
        try {
          (watcher.setTimer as (...a: unknown[]) => void)(...args);
        } finally {
          watcher.close();
        }
      },
    },
  ],
  IoUring: [
    {
      label: 'new IoUring(sqEntries, cqEntries, deferTaskrun)',
      kinds: [integer(false, [0, -1, 32769, 2 ** 31]), integer(false, [-1, 65537, 2 ** 31]), K.optionalBoolean],
      valid: () => [8, 16, false],
      invoke: (args) => new b.IoUring!(...(args as [number, number, boolean])).close(),
    },
    {
      label: '.pollAdd(fd, events, data, flags)',
      kinds: [K.fd, K.uint32, K.uint32, integer(false, [-1, 16, 2 ** 31])],
      valid: () => [socketpair(), C.POLLIN, 0xffffffff, 1],
      invoke: onFreshRing('pollAdd'),
    },
    { label: '.pollRemove(target, data)', kinds: [K.uint32, K.optionalUint32], valid: () => [7, 0], invoke: onFreshRing('pollRemove') },
    { label: '.cancel(target, data)', kinds: [K.uint32, K.optionalUint32], valid: () => [7, 0], invoke: onFreshRing('cancel') },
    {
      label: '.pollUpdate(target, newData, events, flags, data)',
      kinds: [K.uint32, K.uint32, K.uint32, integer(true, [-1, 16, 2 ** 31]), K.optionalUint32],
      valid: () => [7, 0, C.POLLIN, 2, 0],
      invoke: onFreshRing('pollUpdate'),
    },
    {
      label: '.wait(events, maxevents, timeoutMs)',
      kinds: [K.epollEvents, integer(true, (args) => [0, -1, byteLength(args[0]) / 8 + 1, 2 ** 31]), K.timeout],
      valid: () => [new Int32Array(8), 4, 0],
      invoke: onFreshRing('wait'),
    },
  ],
  TlsContext: [{
    label: 'new TlsContext(options)',
    kinds: [{ typeErrors: [undefined, null, 5, 'options', true, Symbol('o')] }],
    valid: () => [{ server: false, verifyPeer: false }],
    invoke: (args) => new b.TlsContext!(...(args as [{ server: boolean }])),
  }],
  makeCertificate: [{
    label: 'makeCertificate(options)',
    kinds: [{ typeErrors: [undefined, null, 5, 'options', true, Symbol('o')] }],
    valid: () => [{ names: ['localhost'] }],
  }],
  TlsEngine: [
    {
      label: 'new TlsEngine(context, options)',
      kinds: [{ typeErrors: [undefined, null, 5, {}, 'context', new Uint8Array(4)] }, K.unread],
      valid: () => [new b.TlsContext!({ server: false, verifyPeer: false }), {}],
      invoke: (args) => new b.TlsEngine!(...(args as [object, object])).free(),
    },
    ...(['feed', 'read', 'write', 'pull'] as const).map((method) => ({
      label: `.${method}(buffer, offset, length)`,
      // The buffer comes first here: offset and length are relative to args[0].
      kinds: [K.buffer, integer(false, (args) => [-1, byteLength(args[0]) + 1, 2 ** 31]),
        integer(false, (args) => [-1, byteLength(args[0]) + 1, 2 ** 31])],
      valid: () => [Buffer.alloc(16), 0, 16],
      invoke: onFreshEngine(method),
    })),
    {
      label: '.writeFile(fd, position, length)',
      kinds: [K.fd, K.fileOffset, K.fileLength],
      valid: () => [res.fd(fs.openSync(path.join(dataDirectory, 'data'), 'r')), 0, 16],
      invoke: onFreshEngine('writeFile'),
    },
  ],
};

/** Calls `method` on a client engine of its own (before any handshake), freed again at once. */
function onFreshEngine(method: string): (args: unknown[]) => unknown {
  return (args) => {
    const engine = new b.TlsEngine!(new b.TlsContext!({ server: false, verifyPeer: false }));
    try {
      return (engine as unknown as Record<string, (...a: unknown[]) => unknown>)[method](...args);
    } finally {
      engine.free();
    }
  };
}

/** Calls `method` on a ring of its own, closed again at once (what it queued is never submitted). */
function onFreshRing(method: string): (args: unknown[]) => unknown {
  return (args) => {
    const ring = new b.IoUring!(4);
    try {
      return (ring as unknown as Record<string, (...a: unknown[]) => unknown>)[method](...args);
    } finally {
      ring.close();
    }
  };
}

/** arm() on a thread of its own (one wait in flight per thread), closed again at once. */
function armFreshThread(args: unknown[]): void {
  const thread = new b.WaitThread(() => undefined);
  try {
    (thread.arm as (...a: unknown[]) => void)(...args);
  } finally {
    thread.close();
  }
}

/** Exports that exist only on another platform. */
const ELSEWHERE: Record<string, string> = {
  wsapoll: 'win32', sendfile: 'linux', recvfile: 'linux', pipe: 'linux', LoopWatcher: 'linux', IoUring: 'linux', TlsContext: 'linux',
  TlsEngine: 'linux', makeCertificate: 'linux',
};
/** Exports that are not functions. */
const VALUES = ['constants', 'platform',
  // TLS: what the addon found, or why it has none (a build without OpenSSL's headers, a Node without its symbols).
  ...(b.TlsContext !== undefined ? ['opensslVersion', 'tlsFunctions'] : ['tlsUnavailable'])].sort();

function nonBlockingListener(): number {
  const listening = listener(res, 'tcp4');
  b.setNonBlocking(listening.fd, true);
  return listening.fd;
}

/** The calls whose result is a new descriptor (other numbers, such as byte counts, are not). */
const CREATES = new Set(['socket', 'socketpair', 'accept', 'acceptWithAddress', 'epoll_create1', 'pipe']);

/** Keeps any descriptor a call created, so the test's release closes it. */
function adopt(name: string, result: unknown): void {
  if (!CREATES.has(name)) return;
  if (typeof result === 'number' && result >= 0) res.fd(result);
  else if (Array.isArray(result)) result.forEach((fd: number) => res.fd(fd));
  else if (result && typeof result === 'object') res.fd((result as { fd: number }).fd);
}

function call(name: string, form: Form, args: unknown[]): unknown {
  if (form.invoke) return form.invoke(args);
  return (b as unknown as Record<string, (...a: unknown[]) => unknown>)[name](...args);
}

const show = (value: unknown): string => inspect(value, { depth: 1, maxStringLength: 24, breakLength: Infinity });

/** Calls the binding; returns '' when it threw `expected`, else what happened instead. */
function expectThrow(name: string, form: Form, args: unknown[], expected: typeof TypeError | typeof RangeError): string {
  try {
    adopt(name, call(name, form, args));
    return `${name}(${args.map(show).join(', ')}) returned instead of throwing ${expected.name}`;
  } catch (err) {
    if (err instanceof expected && (err as Error).message.length > 0) return '';
    const e = err as Error & { code?: string };
    return `${name}(${args.map(show).join(', ')}) threw ${e?.constructor?.name} ${e?.code ?? ''} ${e?.message} instead of ${expected.name}`;
  }
}

// ---------------------------------------------------------------------------------------------

describe('native arguments: the table covers every binding', () => {
  it('every exported function has a table entry, and every entry is exported here or on its own platform', () => {
    const exported = Object.keys(b).filter((key) => typeof (b as unknown as Record<string, unknown>)[key] === 'function');
    assert.deepEqual(exported.filter((name) => !(name in TABLE)), [], 'exports without a table entry');
    const missing = Object.keys(TABLE).filter((name) => !exported.includes(name) && ELSEWHERE[name] !== b.platform);
    assert.deepEqual(missing.filter((name) => !(name in ELSEWHERE)), [], 'table entries for no export');
    assert.deepEqual(Object.keys(b).filter((key) => !exported.includes(key)).sort(), VALUES);
  });
});

describe('native arguments: wrong types are TypeErrors, out-of-range values RangeErrors', () => {
  releaseAfterEach(res);
  before(() => {
    dataDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-arguments-'));
    fs.writeFileSync(path.join(dataDirectory, 'data'), 'sixteen bytes...');
  });
  after(() => fs.rmSync(dataDirectory, { recursive: true, force: true }));

  for (const [name, forms] of Object.entries(TABLE)) {
    // An export of another platform (ELSEWHERE) has no test here; the coverage test vouches for it.
    if (typeof (b as unknown as Record<string, unknown>)[name] !== 'function') continue;
    for (const form of forms) {
      it(`${name}(${form.label})`, () => {
        // The valid call succeeds: so each failure below is caused by the one value changed.
        const valid = form.valid();
        adopt(name, call(name, form, valid));
        if (name === 'close') res.forget(valid[0] as number);

        const failures: string[] = [];
        let calls = 0;
        if (form.kinds.some((kind) => kind.typeErrors.includes(undefined))) {
          calls++;
          failures.push(expectThrow(name, form, [], TypeError));
        }
        form.kinds.forEach((kind, index) => {
          for (const value of kind.typeErrors) {
            const args = form.valid();
            args[index] = value;
            calls++;
            failures.push(expectThrow(name, form, args, TypeError));
          }
          for (const value of kind.rangeErrors?.(form.valid()) ?? []) {
            const args = form.valid();
            args[index] = value;
            calls++;
            failures.push(expectThrow(name, form, args, RangeError));
          }
        });
        for (const { args, error } of form.combined ?? []) {
          calls++;
          failures.push(expectThrow(name, form, args(), error));
        }
        assert.deepEqual(failures.filter(Boolean), []);
        assert.ok(calls >= form.kinds.length, `${calls} calls`);
      });
    }
  }

  it('a detached buffer is memory of length 0: an offset or length past it is a RangeError', () => {
    const memory = new ArrayBuffer(16);
    structuredClone(memory, { transfer: [memory] });
    const fd = socketpair();
    assert.throws(() => b.recv(fd, memory, 0, 1), RangeError);
    assert.throws(() => b.poll!(memory, 1, 0), RangeError);
    assert.equal(b.recv(fd, memory), -1); // Zero bytes asked of a non-blocking socket with nothing: would block.
  });

  it('maxevents past the kernel\'s limit (INT_MAX / sizeof(epoll_event)) is a RangeError, even in an array that large', () => {
    const overLimit = Math.floor((2 ** 31 - 1) / 12) + 1; // 12: the packed x86-64 epoll_event; larger elsewhere.
    // 1.4 GB of address space, never touched: the refusal must come before any allocation or wait.
    const events = new Int32Array(new ArrayBuffer(overLimit * 8));
    const epfd = res.fd(b.epoll_create1!());
    assert.throws(() => b.epoll_wait!(epfd, events, overLimit, 0), RangeError);
  });

  it('a huge sparse array is refused by its first hole, without reserving room for 2^32 - 1 entries', () => {
    const sparse: number[] = [];
    sparse.length = 2 ** 32 - 1;
    assert.throws(() => b.select(sparse, null, null, 0), TypeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Every kind of memory a buffer parameter takes, and the bytes a binding must see in it: a typed
// array's length times its element size, a view's bytes as they are now (a view over a resizable
// buffer follows it; one the buffer shrank below is out of bounds: 0 bytes). Too few bytes would
// lose data; too many would read or write past the view.

interface MemorySample {
  memory: ArrayBufferView | ArrayBuffer;
  /** The bytes a binding may touch. */
  bytes: number;
  /** All of the underlying buffer (as long as it is now), to check nothing around the view changed. */
  whole: Uint8Array;
  /** Where the view starts in it. */
  start: number;
}

type TypedArrayConstructor = new (buffer: ArrayBufferLike, byteOffset?: number, length?: number) => ArrayBufferView;
const Float16 = (globalThis as { Float16Array?: TypedArrayConstructor }).Float16Array;

/** 16 bytes at offset 16 of a 64-byte buffer, as `Type` (so both a short and a long reach would show). */
function typed(Type: TypedArrayConstructor, bytesPerElement: number): () => MemorySample {
  return () => {
    const buffer = new ArrayBuffer(64);
    return { memory: new Type(buffer, 16, 16 / bytesPerElement), bytes: 16, whole: new Uint8Array(buffer), start: 16 };
  };
}

/** A view over a resizable buffer of `initial` bytes, resized to `now` after the view was made. */
function resizable(initial: number, now: number, view: (buffer: ResizableArrayBuffer) => ArrayBufferView | ArrayBuffer,
  bytes: number, start: number): () => MemorySample {
  return () => {
    const buffer = resizableBuffer(initial, 128);
    const memory = view(buffer);
    buffer.resize(now);
    return { memory, bytes, whole: new Uint8Array(buffer), start };
  };
}

/** `sample` is undefined where this Node lacks the kind (Float16Array came with Node 24). */
const MEMORY: Array<{ label: string; sample: (() => MemorySample) | undefined }> = [
  { label: 'Buffer', sample: () => { const memory = Buffer.alloc(16); return { memory, bytes: 16, whole: new Uint8Array(memory.buffer), start: 0 }; } },
  { label: 'Int8Array', sample: typed(Int8Array, 1) },
  { label: 'Uint8Array', sample: typed(Uint8Array, 1) },
  { label: 'Uint8ClampedArray', sample: typed(Uint8ClampedArray, 1) },
  { label: 'Int16Array', sample: typed(Int16Array, 2) },
  { label: 'Uint16Array', sample: typed(Uint16Array, 2) },
  { label: 'Float16Array', sample: Float16 && typed(Float16, 2) },
  { label: 'Int32Array', sample: typed(Int32Array, 4) },
  { label: 'Uint32Array', sample: typed(Uint32Array, 4) },
  { label: 'Float32Array', sample: typed(Float32Array, 4) },
  { label: 'Float64Array', sample: typed(Float64Array, 8) },
  { label: 'BigInt64Array', sample: typed(BigInt64Array, 8) },
  { label: 'BigUint64Array', sample: typed(BigUint64Array, 8) },
  { label: 'DataView', sample: typed(DataView as unknown as TypedArrayConstructor, 1) },
  { label: 'ArrayBuffer', sample: () => { const memory = new ArrayBuffer(16); return { memory, bytes: 16, whole: new Uint8Array(memory), start: 0 }; } },
  {
    label: 'a view over a SharedArrayBuffer',
    sample: () => { const buffer = new SharedArrayBuffer(64); return { memory: new Uint8Array(buffer, 16, 16), bytes: 16, whole: new Uint8Array(buffer), start: 16 }; },
  },
  { label: 'resizable: a fixed-length view', sample: resizable(64, 64, (rab) => new Uint32Array(rab, 16, 4), 16, 16) },
  { label: 'resizable: a length-tracking view after the buffer grew', sample: resizable(32, 64, (rab) => new Uint16Array(rab, 16), 48, 16) },
  {
    label: 'resizable: a length-tracking BigInt64Array over a length that is not whole elements',
    sample: resizable(16, 44, (rab) => new BigInt64Array(rab, 8), 32, 8),
  },
  { label: 'resizable: a length-tracking DataView after the buffer shrank', sample: resizable(64, 40, (rab) => new DataView(rab, 16), 24, 16) },
  { label: 'resizable: a fixed-length view the buffer shrank below (out of bounds)', sample: resizable(64, 40, (rab) => new Uint8Array(rab, 16, 32), 0, 16) },
  { label: 'resizable: a fixed-length DataView the buffer shrank below', sample: resizable(64, 40, (rab) => new DataView(rab, 16, 32), 0, 16) },
  { label: 'resizable: a length-tracking view that starts past the shrunk end', sample: resizable(64, 40, (rab) => new Float32Array(rab, 48), 0, 48) },
  { label: 'resizable: the ArrayBuffer itself, grown', sample: resizable(16, 40, (rab) => rab, 40, 0) },
];

describe('native arguments: every kind of memory is used at exactly its byte length', () => {
  releaseAfterEach(res);

  for (const { label, sample } of MEMORY) {
    it(`${label}: send, writev and recv use exactly its bytes; an offset or length past them is a RangeError`, function () {
      skipUnless(this, sample, `Node ${process.version} has no ${label}`);
      const { memory, bytes, whole, start } = sample();
      const { client, server } = connectedPair(res, 'socketpair');
      whole.fill(0xee);
      for (let i = 0; i < bytes; i++) whole[start + i] = i + 1;
      const region = Buffer.from(whole.subarray(start, start + bytes));
      const sink = Buffer.alloc(256);
      const isView = ArrayBuffer.isView(memory);

      if (label === 'Float16Array') {
        // Node 24 has Float16Array but N-API named no type for it until napi_float16_array: a
        // build that cannot size it refuses it rather than guess.
        try {
          b.send(client, memory);
        } catch (err) {
          assert.ok(err instanceof TypeError && /element type/.test(err.message), String(err));
          assert.throws(() => b.writev(client, [memory as ArrayBufferView]), TypeError);
          return;
        }
        assert.deepEqual(sink.subarray(0, b.recv(server, sink)), region);
      } else {
        assert.equal(b.send(client, memory), bytes);
        if (bytes > 0) assert.deepEqual(sink.subarray(0, b.recv(server, sink)), region);
      }
      if (isView) {
        assert.equal(b.writev(client, [memory as ArrayBufferView, Buffer.from('|')]), bytes + 1);
        assert.deepEqual(sink.subarray(0, b.recv(server, sink)), Buffer.concat([region, Buffer.from('|')]));
      } else {
        assert.throws(() => b.writev(client, [memory as unknown as ArrayBufferView]), TypeError);
      }

      // Into it: exactly its bytes are written, nothing around them.
      b.send(server, Buffer.alloc(bytes + 8, 0x55));
      assert.equal(b.recv(client, memory), bytes); // (0 bytes asked: 0, though data is waiting.)
      const expected = new Uint8Array(whole.length).fill(0xee);
      expected.fill(0x55, start, start + bytes);
      assert.deepEqual(new Uint8Array(whole), expected);

      assert.throws(() => b.send(client, memory, bytes + 1), RangeError);
      assert.throws(() => b.send(client, memory, 0, bytes + 1), RangeError);
      if (isView) assert.throws(() => b.writev(client, [memory as ArrayBufferView], 0, 1, bytes + 1), RangeError);
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe('native arguments: random argument lists (fast-check, in a child process)', () => {
  // IOMUX_RANDOM_CALLS sets how many (npm run test:asan asks for 50,000); the time limits grow with it.
  const runs = Number(process.env.IOMUX_RANDOM_CALLS ?? 5000);
  const scale = Math.max(1, runs / 5000);
  it(`no call crashes or hangs the process; every refusal is a TypeError, a RangeError or a system error (${runs} calls)`, function () {
    assert.ok(Number.isInteger(runs) && runs > 0, `IOMUX_RANDOM_CALLS must be a positive integer, not ${process.env.IOMUX_RANDOM_CALLS}`);
    this.timeout(60_000 * scale);
    const workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-random-calls-'));
    const log = path.join(workdir, 'calls.log');
    try {
      const child = spawnSync(process.execPath, [require.resolve('./fixtures/random-calls'), log, String(runs)], {
        cwd: workdir, // Unix paths in the random arguments become socket files here.
        stdio: 'ignore', // Descriptors 0-2 are /dev/null: a random recv(1) must find no socket to block on.
        timeout: 45_000 * scale,
      });
      const lines = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trimEnd().split('\n') : [];
      // On a property failure fast-check's report (with its seed, to replay the run) ends the log;
      // on a crash the last lines are the calls that were being made.
      const failedAt = lines.findIndex((line) => line.startsWith('FAILED'));
      const last = (failedAt >= 0 ? lines.slice(failedAt, failedAt + 12) : lines.slice(-3)).join('\n');
      assert.equal(child.signal, null, `the child died of ${child.signal}; its last calls:\n${last}`);
      assert.equal(child.status, 0, `the property failed:\n${last}`);
      const summary = /^ok: (\d+) calls (\{.*\})$/.exec(lines[lines.length - 1]);
      assert.ok(summary, `no summary line: ${last}`);
      assert.ok(Number(summary[1]) >= runs);
      // Every kind of outcome happened: the calls reached the kernel, not only the argument checks.
      const outcomes = JSON.parse(summary[2]) as Record<string, number>;
      for (const [outcome, count] of Object.entries(outcomes)) assert.ok(count > 0, `no call ended in ${outcome}`);
    } finally {
      fs.rmSync(workdir, { recursive: true, force: true });
    }
  });
});
