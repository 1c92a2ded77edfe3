/**
 * A small socket object in the spirit of Python's `socket` module, on the raw bindings.
 *
 * Three modes, as in Python: blocking (`setTimeout(null)`, the default), non-blocking
 * (`setTimeout(0)` or `setBlocking(false)`: a call that would block throws EAGAIN), and timeout
 * (`setTimeout(ms)`: the descriptor is non-blocking and each call waits with poll for at most
 * `ms`, then throws SocketTimeoutError). Blocking calls block the calling thread: use them in a
 * CLI, a child process or a worker, not next to an event loop.
 */
import { binding, constants, BufferLike, Linger, SocketAddress, SocketOptionValue } from './native';
import { SocketTimeoutError, systemError } from './errors';
import { PollFdArray } from './pollfds';

const WOULD_BLOCK = -1;
const pollNative = (binding.poll ?? binding.wsapoll)!;

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

export class Socket {
  private descriptor: number;
  private timeoutMs: number | null = null;

  /**
   * A new socket (`family` AF_INET, AF_INET6 or AF_UNIX; `type` SOCK_STREAM or SOCK_DGRAM), or a
   * wrapper around an existing descriptor when `fd` is given.
   */
  constructor(
    readonly family: number = constants.AF_INET,
    readonly type: number = constants.SOCK_STREAM,
    readonly protocol = 0,
    fd?: number,
  ) {
    this.descriptor = fd ?? binding.socket(family, type, protocol);
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

  bind(path: string): void;
  bind(host: string, port: number): void;
  bind(hostOrPath: string, port?: number): void {
    if (this.family === constants.AF_UNIX) binding.bind(this.fd, hostOrPath);
    else binding.bind(this.fd, numericHost(this.family, hostOrPath), port ?? 0);
  }

  listen(backlog = 511): void {
    binding.listen(this.fd, backlog);
  }

  /** Waits for a connection (per the socket's mode) and returns it with the peer's address. */
  accept(): [Socket, SocketAddress] {
    const accepted = this.retry('accept', constants.POLLIN, () => {
      const result = binding.acceptWithAddress(this.fd, false);
      return result ?? WOULD_BLOCK;
    });
    const conn = new Socket(this.family, this.type, this.protocol, accepted.fd);
    // Python: an accepted socket takes the listener's default mode, not its non-blocking flag.
    if (this.timeoutMs !== null) conn.setTimeout(this.timeoutMs);
    return [conn, accepted.peer];
  }

  connect(path: string): void;
  connect(host: string, port: number): void;
  connect(hostOrPath: string, port?: number): void {
    const err = this.connectEx(hostOrPath, port as number);
    if (err !== 0) throw systemError(err, 'connect', this.family === constants.AF_UNIX ? hostOrPath : `${hostOrPath}:${port}`);
  }

  /** Like connect, but returns 0 or the errno value (EINPROGRESS for a non-blocking socket) instead of throwing. */
  connectEx(path: string): number;
  connectEx(host: string, port: number): number;
  connectEx(hostOrPath: string, port?: number): number {
    let connected: boolean;
    try {
      connected = this.family === constants.AF_UNIX
        ? binding.connect(this.fd, hostOrPath)
        : binding.connect(this.fd, numericHost(this.family, hostOrPath), port ?? 0);
    } catch (err) {
      const errno = (err as { errno?: number }).errno;
      if (typeof errno === 'number') return -errno;
      throw err;
    }
    if (connected) return 0;
    if (this.timeoutMs === 0) return constants.errno.EINPROGRESS;
    // Timeout mode: wait for the handshake, then read its outcome.
    if (!waitForDescriptor(this.fd, constants.POLLOUT, this.timeoutMs)) {
      throw new SocketTimeoutError('connect', this.timeoutMs ?? -1);
    }
    return binding.getsockopt(this.fd, constants.SOL_SOCKET, constants.SO_ERROR) as number;
  }

  /** Up to `size` bytes; an empty Buffer means the peer finished sending. */
  recv(size: number, flags = 0): Buffer {
    const buffer = Buffer.allocUnsafe(size);
    const n = this.recvInto(buffer, size, flags);
    return buffer.subarray(0, n);
  }

  /** Receives into the caller's buffer; returns the count (0 = end of stream). */
  recvInto(buffer: BufferLike, nbytes?: number, flags = 0): number {
    const length = nbytes ?? (buffer as ArrayBufferView).byteLength ?? (buffer as ArrayBuffer).byteLength;
    return this.retry('recv', constants.POLLIN, () => binding.recv(this.fd, buffer, 0, length, flags));
  }

  /** Sends what the kernel takes now (maybe less than all); returns the count. */
  send(data: BufferLike | string, flags = 0): number {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    return this.retry('send', constants.POLLOUT, () => binding.send(this.fd, bytes, 0, undefined, flags));
  }

  /** Sends every byte, waiting for room as the socket's mode allows. */
  sendAll(data: BufferLike | string, flags = 0): void {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const total = ArrayBuffer.isView(bytes) ? bytes.byteLength : bytes.byteLength;
    let offset = 0;
    const deadline = this.timeoutMs && this.timeoutMs > 0 ? Date.now() + this.timeoutMs : null;
    while (offset < total) {
      const n = binding.send(this.fd, bytes, offset, total - offset, flags);
      if (n !== WOULD_BLOCK) {
        offset += n;
        continue;
      }
      if (this.timeoutMs === 0) throw systemError(constants.errno.EAGAIN, 'send');
      const left = deadline === null ? null : Math.max(0, deadline - Date.now());
      if (!waitForDescriptor(this.fd, constants.POLLOUT, left)) throw new SocketTimeoutError('send', this.timeoutMs ?? -1);
    }
  }

  recvFrom(size: number, flags = 0): [Buffer, SocketAddress | null] {
    const buffer = Buffer.allocUnsafe(size);
    const datagram = this.retry('recvfrom', constants.POLLIN, () => binding.recvfrom(this.fd, buffer, 0, size, flags) ?? WOULD_BLOCK);
    return [buffer.subarray(0, datagram.bytes), datagram.peer];
  }

  sendTo(data: BufferLike | string, path: string): number;
  sendTo(data: BufferLike | string, host: string, port: number): number;
  sendTo(data: BufferLike | string, hostOrPath: string, port?: number): number {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    return this.retry('sendto', constants.POLLOUT, () =>
      this.family === constants.AF_UNIX
        ? binding.sendto(this.fd, bytes, undefined, undefined, 0, hostOrPath)
        : binding.sendto(this.fd, bytes, undefined, undefined, 0, numericHost(this.family, hostOrPath), port ?? 0));
  }

  /** false = non-blocking (timeout 0); true = blocking without a timeout. */
  setBlocking(blocking: boolean): void {
    this.setTimeout(blocking ? null : 0);
  }

  getBlocking(): boolean {
    return this.timeoutMs !== 0;
  }

  /** null: blocking; 0: non-blocking; ms > 0: each call waits at most that long. */
  setTimeout(timeoutMs: number | null): void {
    if (timeoutMs !== null && !(timeoutMs >= 0)) throw new RangeError('The timeout must be null or a number >= 0');
    binding.setNonBlocking(this.fd, timeoutMs !== null);
    this.timeoutMs = timeoutMs;
  }

  getTimeout(): number | null {
    return this.timeoutMs;
  }

  setsockopt(level: number, option: number, value: SocketOptionValue): void {
    binding.setsockopt(this.fd, level, option, value);
  }

  getsockopt(level: number, option: number): number | string | Linger {
    return binding.getsockopt(this.fd, level, option);
  }

  getsockname(): SocketAddress {
    return binding.getsockname(this.fd);
  }

  getpeername(): SocketAddress {
    return binding.getpeername(this.fd);
  }

  shutdown(how: ShutdownHow | number): void {
    binding.shutdown(this.fd, typeof how === 'number' ? how : SHUTDOWN[how]);
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

  private get fd(): number {
    if (this.descriptor < 0) throw systemError(constants.errno.EBADF, 'socket', '(socket is closed)');
    return this.descriptor;
  }

  /** Runs a would-block-aware call under the socket's mode: throw EAGAIN, wait, or time out. */
  private retry<T>(syscall: string, events: number, attempt: () => T | typeof WOULD_BLOCK): T {
    const deadline = this.timeoutMs && this.timeoutMs > 0 ? Date.now() + this.timeoutMs : null;
    for (;;) {
      const result = attempt();
      if (result !== WOULD_BLOCK) return result as T;
      if (this.timeoutMs === 0) throw systemError(constants.errno.EAGAIN, syscall);
      if (this.timeoutMs === null) {
        // A blocking descriptor only returns EAGAIN when SO_RCVTIMEO/SO_SNDTIMEO expired.
        throw systemError(constants.errno.EAGAIN, syscall, '(SO_RCVTIMEO/SO_SNDTIMEO expired)');
      }
      const left = Math.max(0, (deadline as number) - Date.now());
      if (!waitForDescriptor(this.descriptor, events, left)) throw new SocketTimeoutError(syscall, this.timeoutMs);
    }
  }
}
