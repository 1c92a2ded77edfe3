/**
 * The lab's loopback fixtures and the handler's I/O moves (one recv, read until EAGAIN, fill the send
 * buffer), written once for every scenario. Descriptors are plain numbers from the raw bindings.
 */
import { binding, constants } from '../../lib/native';
import type { Call } from './model';

/** Where the handler's calls are recorded for the picture (Timeline.call), or nowhere. */
export type Recorder = (call: Call) => void;

export interface Listener {
  fd: number;
  port: number;
}

/**
 * A non-blocking TCP listener on 127.0.0.1 with an ephemeral port. `receiveBuffer` (SO_RCVBUF) is
 * set before listen(): accepted sockets inherit it, and the window they announce in the handshake
 * is sized by it (set later, it would not shrink the window scale already agreed).
 */
export function openListener(backlog: number, receiveBuffer?: number): Listener {
  const fd = binding.socket(constants.AF_INET, constants.SOCK_STREAM);
  try {
    binding.setsockopt(fd, constants.SOL_SOCKET, constants.SO_REUSEADDR, true);
    if (receiveBuffer !== undefined) binding.setsockopt(fd, constants.SOL_SOCKET, constants.SO_RCVBUF, receiveBuffer);
    binding.bind(fd, '127.0.0.1', 0);
    binding.listen(fd, backlog);
    binding.setNonBlocking(fd, true);
    return { fd, port: binding.getsockname(fd).port };
  } catch (err) {
    binding.close(fd);
    throw err;
  }
}

/**
 * A client connected to `port`. The connect blocks (on loopback the handshake completes within the
 * call, so the connection is in the listener's queue when this returns); the socket is then made
 * non-blocking, with Nagle off so each send leaves at once.
 */
export function connectLoopback(port: number): number {
  const fd = binding.socket(constants.AF_INET, constants.SOCK_STREAM);
  try {
    binding.connect(fd, '127.0.0.1', port);
    binding.setsockopt(fd, constants.IPPROTO_TCP, constants.TCP_NODELAY, true);
    binding.setNonBlocking(fd, true);
    return fd;
  } catch (err) {
    binding.close(fd);
    throw err;
  }
}

/** A connected TCP pair on loopback: `local` is the side the lab watches, `peer` the side the script drives. */
export interface LoopbackPair {
  local: number;
  peer: number;
}

export function openPair(options: { receiveBuffer?: number } = {}): LoopbackPair {
  const listener = openListener(1, options.receiveBuffer);
  try {
    const peer = connectLoopback(listener.port);
    const local = binding.accept(listener.fd, true);
    if (local < 0) {
      binding.close(peer);
      throw new Error('loopback connection did not reach the accept queue');
    }
    return { local, peer };
  } finally {
    binding.close(listener.fd);
  }
}

/** A connected Unix stream socket pair, both ends non-blocking. */
export function openUnixPair(): LoopbackPair {
  const socketpair = binding.socketpair;
  if (!socketpair) throw new Error('socketpair: not available on this platform');
  const [local, peer] = socketpair(constants.AF_UNIX, constants.SOCK_STREAM);
  binding.setNonBlocking(local, true);
  binding.setNonBlocking(peer, true);
  return { local, peer };
}

/** Closes every descriptor given, ignoring the ones already closed (cleanup must not mask an error). */
export function closeAll(...fds: Array<number | null | undefined>): void {
  for (const fd of fds) {
    if (fd === null || fd === undefined || fd < 0) continue;
    try {
      binding.close(fd);
    } catch {
      // Already closed.
    }
  }
}

/** Sends `total` bytes without blocking; returns how many the kernel took (less when its buffers fill). */
export function sendUpTo(fd: number, total: number, scratch: Buffer): number {
  let sent = 0;
  while (sent < total) {
    const n = binding.send(fd, scratch, 0, Math.min(scratch.length, total - sent));
    if (n < 0) break;
    sent += n;
  }
  return sent;
}

/** Sends until the kernel refuses more (send buffer full); returns the bytes it took. */
export function fillSendBuffer(fd: number, scratch: Buffer, record?: Recorder): number {
  let sent = 0;
  for (;;) {
    const n = binding.send(fd, scratch);
    record?.({ op: 'send', result: n });
    if (n <= 0) return sent;
    sent += n;
  }
}

export interface Drained {
  bytes: number;
  /** recv calls made, including the one that said EAGAIN or end of stream. */
  calls: number;
  /** recv returned 0: the peer will send nothing more. */
  eof: boolean;
}

/** Reads (at most `perCall` bytes a call) until EAGAIN or end of stream: what an edge-triggered handler must do. */
export function readUntilEagain(fd: number, scratch: Buffer, perCall = scratch.length, record?: Recorder): Drained {
  const result: Drained = { bytes: 0, calls: 0, eof: false };
  for (;;) {
    const n = binding.recv(fd, scratch, 0, perCall);
    record?.({ op: 'recv', result: n });
    result.calls++;
    if (n < 0) return result;
    if (n === 0) {
      result.eof = true;
      return result;
    }
    result.bytes += n;
  }
}

/**
 * The peer reads `expected` bytes, waiting at most `timeoutMs` between arrivals (data still in flight
 * after the sender's buffer emptied). Returns what it read.
 */
export function receiveExactly(fd: number, expected: number, scratch: Buffer, timeoutMs: number): number {
  let got = 0;
  while (got < expected) {
    const n = binding.recv(fd, scratch);
    if (n > 0) {
      got += n;
    } else if (n === 0) {
      break;
    } else if (binding.select([fd], null, null, timeoutMs)[0].length === 0) {
      break;
    }
  }
  return got;
}
