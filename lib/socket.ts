/**
 * A small socket object in the spirit of Python's `socket` module, on the raw bindings.
 *
 * Three modes, as in Python: blocking (`setTimeout(null)`, the default), non-blocking
 * (`setTimeout(0)` or `setBlocking(false)`: a call that would block throws EAGAIN), and timeout
 * (`setTimeout(ms)`: the descriptor is non-blocking and each call waits with poll for at most
 * `ms`, then throws SocketTimeoutError). Blocking calls block the calling thread: use them in a
 * CLI, a child process or a worker, not next to an event loop.
 */
import { performance } from 'node:perf_hooks';
import { binding, constants, BufferLike, Linger, SocketAddress, SocketOptionValue } from './native';
import { SocketTimeoutError, SystemError, systemError } from './errors';
import { PollFdArray } from './pollfds';

const WOULD_BLOCK = -1;
const pollNative = (binding.poll ?? binding.wsapoll)!;
// Flags `socket()` accepts in `type` that are modes, not types (Python strips them from `.type` too).
const SOCK_NONBLOCK = constants.SOCK_NONBLOCK ?? 0;
const TYPE_FLAGS = SOCK_NONBLOCK | (constants.SOCK_CLOEXEC ?? 0);

/** One reusable entry for waiting on a single descriptor (JavaScript runs one call at a time). */
const single = new PollFdArray(1);

/** Waits until `fd` has one of `events` (or an error/hang-up); false if the time ran out. */
export function waitForDescriptor(fd: number, events: number, timeoutMs: number | null): boolean {
  single.clear();
  single.push(fd, events);
  return pollNative(single.buffer, 1, timeoutMs) > 0;
}

export type ShutdownHow = 'read' | 'write' | 'both';
const SHUTDOWN: Record<ShutdownHow, number> = {
  read: constants.SHUT_RD,
  write: constants.SHUT_WR,
  both: constants.SHUT_RDWR,
};

/** Names a host the way Python does: '' is any address, 'localhost' the loopback. */
function numericHost(family: number, host: string): string {
  const v6 = family === constants.AF_INET6;
  if (host === '') return v6 ? '::' : '0.0.0.0';
  if (host === 'localhost') return v6 ? '::1' : '127.0.0.1';
  return host;
}

function checkSize(size: unknown, name: string): number {
  if (typeof size !== 'number' || !Number.isInteger(size)) {
    throw new TypeError(`The "${name}" argument must be an integer`);
  }
  if (size < 0 || size > 0x7fffffff) throw new RangeError(`The "${name}" argument must be >= 0 and <= 2147483647`);
  return size;
}

/**
 * The received bytes as their own Buffer. When far fewer bytes arrived than were asked for, they are
 * copied out so a large, mostly empty allocation is not kept alive by a small result.
 */
function received(buffer: Buffer, n: number): Buffer {
  return n >= buffer.length >> 1 ? buffer.subarray(0, n) : Buffer.from(buffer.subarray(0, n));
}

/** Where a deadline-bound call stands: null = no deadline (blocking mode). */
function deadlineFor(timeoutMs: number | null): number | null {
  return timeoutMs !== null && timeoutMs > 0 ? performance.now() + timeoutMs : null;
}

/** The mode of a descriptor being wrapped. Winsock keeps no readable flag, so on Windows the
 * socket is made blocking, the mode Python assumes for a wrapped socket there. */
function wrappedMode(fd: number): number | null {
  if (binding.platform !== 'win32') return binding.getNonBlocking(fd) ? 0 : null;
  binding.setNonBlocking(fd, false);
  return null;
}

export class Socket {
  /** AF_INET, AF_INET6 or AF_UNIX. */
  readonly family: number;
  /** SOCK_STREAM or SOCK_DGRAM (without SOCK_NONBLOCK/SOCK_CLOEXEC, as in Python). */
  readonly type: number;
  readonly protocol: number;
  private descriptor: number;
  private timeoutMs: number | null;

  /**
   * A new socket (`family` AF_INET, AF_INET6 or AF_UNIX; `type` SOCK_STREAM or SOCK_DGRAM, optionally
   * with SOCK_NONBLOCK for a non-blocking socket), or a wrapper around an existing descriptor when
   * `fd` is given (its mode is read from the descriptor: non-blocking means timeout 0).
   */
  constructor(family: number = constants.AF_INET, type: number = constants.SOCK_STREAM, protocol = 0, fd?: number) {
    this.descriptor = fd ?? binding.socket(family, type, protocol);
    this.family = family;
    this.type = type & ~TYPE_FLAGS;
    this.protocol = protocol;
    if (fd === undefined) this.timeoutMs = (type & SOCK_NONBLOCK) !== 0 ? 0 : null;
    else this.timeoutMs = wrappedMode(fd);
  }

  /** Wraps a descriptor this process already owns (it is closed with this object). */
  static fromFd(fd: number, family: number, type: number = constants.SOCK_STREAM): Socket {
    return new Socket(family, type, 0, fd);
  }

  /** The descriptor, or -1 once closed (as Python's fileno()). */
  fileno(): number {
    return this.descriptor;
  }

  get closed(): boolean {
    return this.descriptor < 0;
  }

  /** Gives up ownership: returns the descriptor without closing it; this object then acts closed. */
  detach(): number {
    const fd = this.descriptor;
    this.descriptor = -1;
    return fd;
  }

  bind(path: string): void;
  bind(host: string, port: number): void;
  bind(hostOrPath: string, port?: number): void {
    const fd = this.open('bind');
    if (this.family === constants.AF_UNIX) binding.bind(fd, hostOrPath);
    else binding.bind(fd, numericHost(this.family, hostOrPath), port ?? 0);
  }

  listen(backlog = 511): void {
    binding.listen(this.open('listen'), backlog);
  }

  /**
   * Waits for a connection (per the socket's mode) and returns it with the peer's address.
   * The new socket takes the listener's mode: blocking, non-blocking, or the same timeout.
   * (Python instead gives it `socket.getdefaulttimeout()`; iomux has no process-wide default.)
   */
  accept(): [Socket, SocketAddress] {
    const nonBlocking = this.timeoutMs !== null;
    const accepted = this.retry('accept', constants.POLLIN, (fd) =>
      binding.acceptWithAddress(fd, nonBlocking) ?? WOULD_BLOCK);
    const conn = new Socket(this.family, this.type, this.protocol, accepted.fd);
    conn.timeoutMs = this.timeoutMs;
    return [conn, accepted.peer];
  }

  /** Connects, waiting per the socket's mode; a failure throws with `code`, `address` and `port`. */
  connect(path: string): void;
  connect(host: string, port: number): void;
  connect(hostOrPath: string, port?: number): void {
    const err = this.startConnect(hostOrPath, port);
    if (err === 'timeout') throw new SocketTimeoutError('connect', this.timeoutMs ?? -1);
    if (err !== 0) throw this.connectError(err, hostOrPath, port);
  }

  /**
   * Like connect, but returns 0 or the errno value instead of throwing: EINPROGRESS for a
   * non-blocking socket, EAGAIN when a timeout ran out (as Python's connect_ex), ECONNREFUSED …
   * Invalid arguments and a closed socket still throw.
   */
  connectEx(path: string): number;
  connectEx(host: string, port: number): number;
  connectEx(hostOrPath: string, port?: number): number {
    const err = this.startConnect(hostOrPath, port);
    return err === 'timeout' ? constants.errno.EAGAIN : err;
  }

  /** Up to `size` bytes; an empty Buffer means the peer finished sending. */
  recv(size: number, flags = 0): Buffer {
    const buffer = Buffer.allocUnsafe(checkSize(size, 'size'));
    return received(buffer, this.recvInto(buffer, undefined, flags));
  }

  /**
   * Receives into the caller's buffer; returns the count (0 = end of stream). `nbytes` undefined
   * or 0 means the whole buffer, as in Python.
   */
  recvInto(buffer: BufferLike, nbytes?: number, flags = 0): number {
    const length = nbytes === undefined || nbytes === 0 ? buffer.byteLength : checkSize(nbytes, 'nbytes');
    return this.retry('recv', constants.POLLIN, (fd) => binding.recv(fd, buffer, 0, length, flags));
  }

  /** Sends what the kernel takes now (maybe less than all); returns the count. */
  send(data: BufferLike | string, flags = 0): number {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    return this.retry('send', constants.POLLOUT, (fd) => binding.send(fd, bytes, 0, undefined, flags));
  }

  /**
   * Sends every byte, waiting for room as the socket's mode allows. A timeout bounds the whole
   * call, not each wait (as Python's sendall). On an error some bytes may have been sent.
   */
  sendAll(data: BufferLike | string, flags = 0): void {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const total = bytes.byteLength;
    const deadline = deadlineFor(this.timeoutMs);
    let offset = 0;
    while (offset < total) {
      const fd = this.open('send');
      const n = binding.send(fd, bytes, offset, total - offset, flags);
      if (n === WOULD_BLOCK) this.waitOrThrow('send', fd, constants.POLLOUT, deadline);
      else offset += n;
    }
  }

  /** One datagram (or up to `size` stream bytes) and its sender; the sender is null on a connected stream. */
  recvFrom(size: number, flags = 0): [Buffer, SocketAddress | null] {
    const buffer = Buffer.allocUnsafe(checkSize(size, 'size'));
    const [n, peer] = this.recvFromInto(buffer, undefined, flags);
    return [received(buffer, n), peer];
  }

  /** recvFrom into the caller's buffer: [bytes received, sender]. `nbytes` undefined or 0 = the whole buffer. */
  recvFromInto(buffer: BufferLike, nbytes?: number, flags = 0): [number, SocketAddress | null] {
    const length = nbytes === undefined || nbytes === 0 ? buffer.byteLength : checkSize(nbytes, 'nbytes');
    const datagram = this.retry('recvfrom', constants.POLLIN, (fd) =>
      binding.recvfrom(fd, buffer, 0, length, flags) ?? WOULD_BLOCK);
    return [datagram.bytes, datagram.peer];
  }

  sendTo(data: BufferLike | string, path: string): number;
  sendTo(data: BufferLike | string, host: string, port: number): number;
  sendTo(data: BufferLike | string, hostOrPath: string, port?: number): number {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const unix = this.family === constants.AF_UNIX;
    const host = unix ? hostOrPath : numericHost(this.family, hostOrPath);
    return this.retry('sendto', constants.POLLOUT, (fd) =>
      unix
        ? binding.sendto(fd, bytes, undefined, undefined, 0, host)
        : binding.sendto(fd, bytes, undefined, undefined, 0, host, port ?? 0));
  }

  /** false = non-blocking (timeout 0); true = blocking without a timeout. */
  setBlocking(blocking: boolean): void {
    if (typeof blocking !== 'boolean') throw new TypeError('The "blocking" argument must be a boolean');
    this.setTimeout(blocking ? null : 0);
  }

  /** true unless the socket is non-blocking (timeout 0); a socket with a timeout counts as blocking, as in Python. */
  getBlocking(): boolean {
    return this.timeoutMs !== 0;
  }

  /** null: blocking; 0: non-blocking; ms > 0: each call waits at most that long. */
  setTimeout(timeoutMs: number | null): void {
    if (timeoutMs !== null && typeof timeoutMs !== 'number') {
      throw new TypeError('The timeout must be null or a number of milliseconds');
    }
    if (timeoutMs !== null && !(timeoutMs >= 0 && timeoutMs <= 0x7fffffff)) {
      throw new RangeError('The timeout must be null or a number of milliseconds from 0 to 2147483647');
    }
    binding.setNonBlocking(this.open('setTimeout'), timeoutMs !== null);
    this.timeoutMs = timeoutMs;
  }

  getTimeout(): number | null {
    return this.timeoutMs;
  }

  setsockopt(level: number, option: number, value: SocketOptionValue): void {
    binding.setsockopt(this.open('setsockopt'), level, option, value);
  }

  getsockopt(level: number, option: number): number | string | Linger {
    return binding.getsockopt(this.open('getsockopt'), level, option);
  }

  getsockname(): SocketAddress {
    return binding.getsockname(this.open('getsockname'));
  }

  getpeername(): SocketAddress {
    return binding.getpeername(this.open('getpeername'));
  }

  shutdown(how: ShutdownHow | number): void {
    const value = typeof how === 'number' ? how : SHUTDOWN[how];
    if (value === undefined) throw new TypeError('The "how" argument must be \'read\', \'write\', \'both\' or a SHUT_* constant');
    binding.shutdown(this.open('shutdown'), value);
  }

  /** Closes the descriptor; calling it again does nothing. */
  close(): void {
    if (this.descriptor < 0) return;
    const fd = this.descriptor;
    this.descriptor = -1;
    binding.close(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** The descriptor, or an EBADF system error naming `syscall` once the socket is closed. */
  private open(syscall: string): number {
    if (this.descriptor < 0) throw systemError(constants.errno.EBADF, syscall, '(socket is closed)');
    return this.descriptor;
  }

  /** 0, an errno value, or 'timeout'. */
  private startConnect(hostOrPath: string, port: number | undefined): number | 'timeout' {
    const fd = this.open('connect');
    let connected: boolean;
    try {
      connected = this.family === constants.AF_UNIX
        ? binding.connect(fd, hostOrPath)
        : binding.connect(fd, numericHost(this.family, hostOrPath), port ?? 0);
    } catch (err) {
      // Only the kernel's verdict becomes a return value; bad arguments still throw.
      const e = err as Partial<SystemError>;
      if (e.syscall === 'connect' && typeof e.errno === 'number') return -e.errno;
      throw err;
    }
    if (connected) return 0;
    if (this.timeoutMs === 0) return constants.errno.EINPROGRESS;
    // Timeout mode: wait for the handshake, then read its outcome.
    if (!waitForDescriptor(fd, constants.POLLOUT, this.timeoutMs)) return 'timeout';
    return binding.getsockopt(fd, constants.SOL_SOCKET, constants.SO_ERROR) as number;
  }

  private connectError(err: number, hostOrPath: string, port: number | undefined): SystemError {
    if (this.family === constants.AF_UNIX) {
      return Object.assign(systemError(err, 'connect', hostOrPath), { address: hostOrPath });
    }
    const host = numericHost(this.family, hostOrPath);
    return Object.assign(systemError(err, 'connect', `${host}:${port ?? 0}`), { address: host, port: port ?? 0 });
  }

  /** Runs a would-block-aware call under the socket's mode: throw EAGAIN, wait, or time out. */
  private retry<T>(syscall: string, events: number, attempt: (fd: number) => T | typeof WOULD_BLOCK): T {
    const deadline = deadlineFor(this.timeoutMs);
    for (;;) {
      const fd = this.open(syscall);
      const result = attempt(fd);
      if (result !== WOULD_BLOCK) return result as T;
      this.waitOrThrow(syscall, fd, events, deadline);
    }
  }

  /** After a would-block: throws in non-blocking mode or when the deadline passed, else waits for `events`. */
  private waitOrThrow(syscall: string, fd: number, events: number, deadline: number | null): void {
    if (this.timeoutMs === 0) throw systemError(constants.errno.EAGAIN, syscall);
    if (this.timeoutMs === null) {
      // A blocking descriptor only reports would-block when SO_RCVTIMEO/SO_SNDTIMEO expired.
      throw systemError(constants.errno.EAGAIN, syscall, '(SO_RCVTIMEO/SO_SNDTIMEO expired)');
    }
    const left = Math.max(0, (deadline as number) - performance.now());
    if (!waitForDescriptor(fd, events, left)) throw new SocketTimeoutError(syscall, this.timeoutMs);
  }
}
