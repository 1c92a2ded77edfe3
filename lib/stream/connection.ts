/**
 * One non-blocking stream connection on a reactor: what every server on iomux needs, written once.
 *
 * - Writing: `write()` sends at once when it can and queues the rest (the 'queued' strategy, the
 *   seed's strict read/write separation, always waits for a writable event instead). It returns
 *   false once `highWater` bytes are queued; `onDrain` runs when the queue is back at `lowWater`.
 *   Writes made while corked (always during `onData`) leave together in one gathered write.
 * - `sendFile()` queues a range of a file: sendfile(2) on Linux, read + send elsewhere; it never
 *   holds more than one chunk of the file in memory and respects backpressure like any write.
 * - Reading: `onData(view)` gets a view of the thread's shared read buffer, valid only until it
 *   returns; a `reader` takes over instead (bytes moved without reaching JavaScript). `pause()` /
 *   `resume()` stop and restart reading.
 * - Closing: `end()` flushes, then half-closes (SHUT_WR) and goes on reading; `onFinish` says when
 *   that is done. `close()` is the graceful close: no more data is delivered, the queue is flushed,
 *   our side half-closes, and input is discarded until the peer's end of stream (closing with unread
 *   input would send a reset that destroys replies still in flight), bounded by `lingerMs`.
 *   `destroy()` closes now.
 * - `onError` (at most once) and `onClose` (exactly once) end every connection's life. An exception
 *   thrown by a callback destroys that connection with the exception as its error.
 * - Idle timeout: refreshed by any progress, O(1) per refresh (see idle-timers.ts).
 * - Edge-triggered epoll: reads, writes and discards loop until EAGAIN.
 */
import { isSystemError, systemError } from '../errors';
import { binding, constants, SocketAddress } from '../native';
import { Reactor } from '../reactor';
import { EpollSelector } from '../selectors/epoll';
import { IoUringSelector } from '../selectors/io-uring';
import { EVENT_READ, EVENT_WRITE } from '../selectors/selector';
import { Timer } from '../timer-queue';
import { connectTo, Endpoint, streamSocket } from './endpoint';
import { IdleEntry, IdleTimers } from './idle-timers';
import { readBuffer } from './read-buffer';
import { FileSegment, FlushResult, WriteQueue } from './write-queue';

export type WriteStrategy = 'direct' | 'queued';

export interface ConnectionOptions {
  /** write() returns false once this many bytes are queued. Default 64 KiB. */
  highWater?: number;
  /** onDrain runs when the queue is back at this many bytes. Default highWater / 4. */
  lowWater?: number;
  /** Bytes per recv. Default 64 KiB. */
  readSize?: number;
  /** 'direct' (default): send at once, queue what would block. 'queued': every write waits for a writable event. */
  write?: WriteStrategy;
  /** Close after this long without progress (0: never). Default 0. */
  idleTimeoutMs?: number;
  /** How long close() waits for the peer's end of stream before destroying. Default 30 s. */
  lingerMs?: number;
}

export interface ConnectOptions extends ConnectionOptions {
  /** Give up (ETIMEDOUT) if the connection is not established within this many ms. Default: no limit. */
  timeoutMs?: number;
}

const WOULD_BLOCK = -1;
const DEFAULT_HIGH_WATER = 64 * 1024;
const DEFAULT_READ_SIZE = 64 * 1024;
const DEFAULT_LINGER_MS = 30000;

const idleTimersByReactor = new WeakMap<Reactor, IdleTimers>();

function idleTimersOf(reactor: Reactor): IdleTimers {
  let timers = idleTimersByReactor.get(reactor);
  if (timers === undefined) {
    timers = new IdleTimers(reactor);
    idleTimersByReactor.set(reactor, timers);
  }
  return timers;
}

function isEdgeTriggered(reactor: Reactor): boolean {
  const selector = reactor.selector;
  return (selector instanceof EpollSelector || selector instanceof IoUringSelector) && selector.options.edgeTriggered === true;
}

function writeAfterEnd(): Error {
  const err = new Error('write after end') as Error & { code: string };
  err.code = 'ERR_STREAM_WRITE_AFTER_END';
  return err;
}

export class Connection {
  /** Yours: per-connection state of the protocol built on top. */
  data: unknown = undefined;
  /** The connection is established (connect() only; accepted connections start established). */
  onConnect: ((this: Connection) => void) | null = null;
  /** Bytes arrived: a view of the shared read buffer, valid until this returns. */
  onData: ((this: Connection, data: Buffer) => void) | null = null;
  /**
   * While set, reads instead of recv + onData: called with the socket whenever it is readable, it
   * moves the bytes itself (an upload into a file inside the kernel: `recvfile`) and returns, as
   * recv does, how many it took, 0 at the peer's end of stream or -1 when none were there.
   */
  reader: ((this: Connection, fd: number) => number) | null = null;
  /** The peer finished sending. Default (null): end() our side too once the queue is flushed. */
  onEnd: ((this: Connection) => void) | null = null;
  /** The queue fell back to lowWater after a write() returned false. */
  onDrain: ((this: Connection) => void) | null = null;
  /**
   * After end() (or close()): everything queued was handed to the kernel and our side is shut —
   * half-closed, or closed when the peer had finished first. Once, before onClose; never if the
   * connection failed first. A protocol that confirms a transfer on another connection (FTP's 226)
   * answers here instead of waiting for the peer to close. May run inside end() when nothing is queued.
   */
  onFinish: ((this: Connection) => void) | null = null;
  /** No progress for idleTimeoutMs. Default (null): destroy with an ETIMEDOUT error. */
  onTimeout: ((this: Connection) => void) | null = null;
  /** The connection failed (reset, refused, timed out, a callback threw). At most once, before onClose. */
  onError: ((this: Connection, err: Error) => void) | null = null;
  /** Exactly once: the descriptor is closed. `err` is the error that ended it, or null. */
  onClose: ((this: Connection, err: Error | null) => void) | null = null;

  bytesRead = 0;
  /** The most bytes this connection ever had queued after a write had its chance to go out. */
  peakWritableLength = 0;

  readonly edgeTriggered: boolean;
  private readonly queue = new WriteQueue();
  private readonly handler = (events: number): void => this.onEvents(events);
  private readonly highWater: number;
  private readonly lowWater: number;
  private readonly readSize: number;
  private readonly queuedWrites: boolean;
  private readonly lingerMs: number;
  private idle: IdleEntry | null = null;
  private idleMs = 0;
  private connectTimer: Timer | null = null;
  private lingerTimer: Timer | null = null;
  /** A connect that failed at once: nothing is registered until it is reported. */
  private connectFailure: Error | null = null;
  /** What is registered with the reactor (0: not registered). */
  private interest = 0;
  private connecting: boolean;
  private paused = false;
  private readEnded = false;
  private writeEnded = false;
  private writeShut = false;
  private closing = false;
  private destroyed = false;
  private blocked = false;
  private needDrain = false;
  /** Reading stopped inside a read loop (a pause), so under ET the edge may already be spent. */
  private readInterrupted = false;
  private corks = 0;
  private inEvent = false;
  private closeError: Error | null = null;

  /**
   * Wraps the connected, non-blocking stream socket `fd` (the connection owns it from now on) and
   * registers it with `reactor`. Throws, owning nothing, if the reactor cannot watch it (select:
   * fd >= FD_SETSIZE).
   */
  constructor(readonly reactor: Reactor, readonly fd: number, options: ConnectionOptions = {},
    /** connect() only: the connect is in progress, or failed at once with this error. */
    connecting?: 'connecting' | unknown) {
    this.highWater = options.highWater ?? DEFAULT_HIGH_WATER;
    this.lowWater = options.lowWater ?? Math.floor(this.highWater / 4);
    if (!(this.highWater > 0) || !(this.lowWater >= 0) || this.lowWater >= this.highWater) {
      throw new RangeError('Need 0 <= lowWater < highWater');
    }
    this.readSize = options.readSize ?? DEFAULT_READ_SIZE;
    if (!Number.isInteger(this.readSize) || this.readSize < 1) throw new RangeError('readSize must be an integer >= 1');
    const strategy = options.write ?? 'direct';
    if (strategy !== 'direct' && strategy !== 'queued') throw new RangeError(`write must be 'direct' or 'queued'; got ${String(strategy)}`);
    this.queuedWrites = strategy === 'queued';
    this.lingerMs = options.lingerMs ?? DEFAULT_LINGER_MS;
    this.edgeTriggered = isEdgeTriggered(reactor);
    this.connecting = connecting !== undefined;
    if (this.connecting && connecting !== 'connecting') {
      this.connectFailure = connecting instanceof Error ? connecting : new Error(String(connecting));
    }
    this.applyInterest();
    if (options.idleTimeoutMs) this.setIdleTimeout(options.idleTimeoutMs);
  }

  /**
   * Starts a non-blocking connect to `endpoint` and returns the connection at once. Writes made
   * before it is established are queued. `onConnect` runs once it is; a refused or timed-out connect
   * ends in one `onError` (code ECONNREFUSED, ETIMEDOUT, ...) and `onClose`, always from a later turn.
   */
  static connect(reactor: Reactor, endpoint: Endpoint, options: ConnectOptions = {}): Connection {
    const fd = streamSocket(endpoint);
    let failure: unknown = null;
    try {
      connectTo(fd, endpoint); // Established or in progress: either way, writable says when.
    } catch (err) {
      failure = err;
    }
    let conn: Connection;
    try {
      conn = new Connection(reactor, fd, options, failure === null ? 'connecting' : failure);
    } catch (err) {
      binding.close(fd);
      throw err;
    }
    if (conn.connectFailure !== null) {
      // Reported from a later turn, as every other outcome is: the caller sets its callbacks first.
      const err = conn.connectFailure;
      conn.connectTimer = reactor.setTimeout(() => conn.destroy(err), 0);
    } else if (options.timeoutMs !== undefined) {
      conn.connectTimer = reactor.setTimeout(() => {
        conn.connectTimer = null;
        conn.fail(systemError(constants.errno.ETIMEDOUT, 'connect', `(not established within ${options.timeoutMs} ms)`));
      }, options.timeoutMs);
    }
    return conn;
  }

  /** Bytes handed to the kernel so far. */
  get bytesWritten(): number {
    return this.queue.sent;
  }

  /** Bytes queued and not yet sent (file ranges not counted: they take no memory). */
  get writableLength(): number {
    return this.queue.bytes;
  }

  get isConnecting(): boolean {
    return this.connecting;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** True once the descriptor is closed. */
  get closed(): boolean {
    return this.destroyed;
  }

  get remoteAddress(): SocketAddress {
    return binding.getpeername(this.fd);
  }

  get localAddress(): SocketAddress {
    return binding.getsockname(this.fd);
  }

  /**
   * Queues `chunk` (a string goes as UTF-8) and sends what the socket takes now. Returns false once
   * highWater bytes are queued: wait for onDrain before writing more. A write to a destroyed
   * connection is dropped (the peer may go at any time); a write after end() throws.
   */
  write(chunk: Uint8Array | string): boolean {
    if (this.destroyed) return false;
    if (this.writeEnded) throw writeAfterEnd();
    const owned = typeof chunk === 'string';
    const bytes = owned ? Buffer.from(chunk) : chunk;
    if (bytes.length === 0) return this.checkHighWater();
    if (this.corks > 0) {
      this.queue.pushBytes(bytes, !owned);
    } else if (this.queue.isEmpty && this.sendsNow()) {
      this.sendNow(bytes, owned);
    } else {
      this.queue.pushBytes(owned ? bytes : Buffer.from(bytes), false);
      this.notePeak();
      this.queueChanged();
    }
    return this.checkHighWater();
  }

  /**
   * Queues `length` bytes of the open file `fd` from `offset` (the file's own position is neither
   * used nor moved; the descriptor stays yours: keep it open until `done`). `done(err)` runs once
   * the range is sent, or with the error that ended the connection first. A file that turns out
   * shorter than the range destroys the connection (the stream would be corrupt).
   */
  sendFile(fd: number, offset: number, length: number, done?: (err: Error | null) => void): void {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`offset must be an integer >= 0; got ${offset}`);
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`length must be an integer >= 0; got ${length}`);
    if (this.destroyed) {
      done?.(this.closeError ?? new Error('The connection is closed'));
      return;
    }
    if (this.writeEnded) throw writeAfterEnd();
    this.queue.pushFile(new FileSegment(fd, offset, offset + length, done ?? null));
    // Never from inside a flush (a range's done() may send the next): the event's end sends it.
    if (this.corks === 0) this.queueChanged();
  }

  /** Holds writes until uncork(), so that they leave together in one gathered write. Nests. */
  cork(): void {
    this.corks++;
  }

  uncork(): void {
    if (this.corks === 0 || --this.corks > 0 || this.destroyed) return;
    if (!this.queue.isEmpty) {
      if (this.sendsNow()) this.flush();
    } else if (this.writeEnded && !this.writeShut && !this.connecting) {
      this.finishWriting();
    }
    if (this.destroyed) return;
    this.queue.adoptBorrowed();
    this.notePeak();
    if (!this.inEvent) this.applyInterest();
  }

  pause(): void {
    this.paused = true;
    if (!this.inEvent) this.applyInterest();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.readInterrupted && this.edgeTriggered && !this.destroyed) {
      // The edge that announced the unread bytes is spent: read them from a later turn.
      this.readInterrupted = false;
      this.reactor.setTimeout(() => this.resumeReading(), 0);
    }
    if (!this.inEvent) this.applyInterest();
  }

  /** Flushes, then half-closes our side (SHUT_WR); reading goes on until the peer's end of stream. */
  end(chunk?: Uint8Array | string): void {
    if (this.destroyed || this.writeEnded) return;
    if (chunk !== undefined) {
      this.write(chunk);
      if (this.destroyed) return; // The send failed: the connection is gone, its descriptor closed.
    }
    this.writeEnded = true;
    if (this.queue.isEmpty && !this.connecting && this.corks === 0) this.finishWriting();
    else if (this.corks === 0) this.queueChanged();
  }

  /**
   * The graceful close: no more data is delivered; the queue is flushed; our side half-closes; input
   * is discarded until the peer's end of stream; then the descriptor is closed. A peer that does not
   * finish within `lingerMs` is cut off (destroy).
   */
  close(): void {
    if (this.destroyed || this.closing) return;
    this.closing = true;
    this.paused = false;
    this.lingerTimer = this.reactor.setTimeout(() => {
      this.lingerTimer = null;
      this.destroy();
    }, this.lingerMs);
    if (this.writeShut) {
      this.discardUntilEnd();
      if (!this.destroyed && !this.inEvent) this.applyInterest();
      return;
    }
    this.end();
  }

  /** Closes now, dropping whatever is queued. `err`, if given, is reported through onError first. */
  destroy(err?: Error): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.closeError = err ?? null;
    if (this.idle !== null) idleTimersOf(this.reactor).untrack(this.idle);
    if (this.connectTimer !== null) this.reactor.clearTimer(this.connectTimer);
    if (this.lingerTimer !== null) this.reactor.clearTimer(this.lingerTimer);
    this.connectTimer = this.lingerTimer = null;
    // A closed reactor has forgotten every descriptor already.
    if (this.interest !== 0 && !this.reactor.selector.closed) this.reactor.remove(this.fd);
    this.interest = 0;
    try {
      binding.close(this.fd);
    } catch {
      // EBADF cannot happen (we own it); anything else leaves nothing for us to do.
    }
    this.queue.clear(err ?? new Error('The connection was closed before this was sent'));
    if (err !== undefined) this.onError?.(err);
    this.onClose?.(err ?? null);
  }

  /** Close if idle for `ms` (0 turns it off). Any progress in either direction starts the period over. */
  setIdleTimeout(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`The idle timeout must be a number of ms >= 0; got ${ms}`);
    if (this.destroyed) return;
    const timers = idleTimersOf(this.reactor);
    this.idleMs = ms;
    if (ms === 0) {
      if (this.idle !== null) timers.untrack(this.idle);
      return;
    }
    this.idle ??= new IdleEntry(() => this.timedOut());
    timers.track(this.idle, ms);
  }

  setNoDelay(noDelay = true): void {
    binding.setsockopt(this.fd, constants.IPPROTO_TCP, constants.TCP_NODELAY, noDelay);
  }

  [Symbol.dispose](): void {
    this.destroy();
  }

  private onEvents(events: number): void {
    this.inEvent = true;
    try {
      if (this.connecting) {
        this.finishConnecting();
        // Under edge-triggered epoll, bytes that came with this event get no event of their own.
        if (!this.edgeTriggered || this.destroyed || this.connecting) return;
      }
      if (events & EVENT_READ) this.readable();
      if (events & EVENT_WRITE && !this.destroyed) this.writable();
    } finally {
      this.inEvent = false;
    }
    // Edge-triggered, what the event queued goes out now unless the socket is known to be full: no
    // new writable edge comes for a socket that never filled up, and not every mechanism's event
    // carries the writable bit (epoll's does; an io_uring completion has only its wake-up's events).
    if (this.edgeTriggered && !this.blocked && !this.destroyed && !this.connecting &&
      (!this.queue.isEmpty || (this.writeEnded && !this.writeShut))) this.writable();
    if (!this.destroyed) this.applyInterest();
  }

  private finishConnecting(): void {
    const err = binding.getsockopt(this.fd, constants.SOL_SOCKET, constants.SO_ERROR) as number;
    if (err !== 0) {
      this.fail(systemError(err, 'connect'));
      return;
    }
    this.connecting = false;
    if (this.connectTimer !== null) this.reactor.clearTimer(this.connectTimer);
    this.connectTimer = null;
    this.touch();
    if (!this.call(this.onConnect)) return;
    if (!this.queue.isEmpty) this.flush();
    if (!this.destroyed && this.writeEnded && this.queue.isEmpty && !this.writeShut) this.finishWriting();
  }

  private readable(): void {
    if (this.closing && this.writeShut) {
      this.discardUntilEnd();
      return;
    }
    const buffer = readBuffer(this.readSize);
    for (;;) {
      if (this.paused) {
        this.readInterrupted = true;
        return;
      }
      const reader = this.closing ? null : this.reader;
      let n: number;
      try {
        n = reader !== null ? reader.call(this, this.fd) : binding.recv(this.fd, buffer, 0, this.readSize);
      } catch (err) {
        this.fail(err);
        return;
      }
      if (n === WOULD_BLOCK || this.destroyed) return;
      if (n === 0) {
        this.peerEnded();
        return;
      }
      this.bytesRead += n;
      this.touch();
      if (!this.closing && reader === null) {
        this.cork();
        const delivered = this.call(this.onData, buffer.subarray(0, n));
        this.uncork();
        if (!delivered || this.destroyed) return;
      }
      // Level-triggered: one read per wake-up keeps connections fair; the next wait reports the rest.
      if (!this.edgeTriggered) return;
    }
  }

  private writable(): void {
    this.blocked = false;
    if (!this.queue.isEmpty) this.flush();
    else if (this.writeEnded && !this.writeShut) this.finishWriting();
  }

  /**
   * Sends the queue until it is empty or the socket is full, then what follows from either. What
   * onDrain writes goes out in the same turn: under edge-triggered epoll no new writable event would
   * come for a socket that never filled up.
   */
  private flush(): void {
    for (;;) {
      let result: FlushResult;
      try {
        result = this.queue.flush(this.fd);
      } catch (err) {
        this.fail(err);
        return;
      }
      if (this.destroyed) return;
      this.touch();
      this.blocked = result === FlushResult.Blocked;
      if (this.needDrain && this.queue.bytes <= this.lowWater) {
        this.needDrain = false;
        if (!this.call(this.onDrain) || this.destroyed) return;
      }
      if (this.blocked || this.queue.isEmpty) break;
    }
    if (!this.blocked && this.queue.isEmpty && this.writeEnded && !this.writeShut) this.finishWriting();
  }

  /**
   * Whether a write may go to the socket now, rather than wait in the queue for a writable event.
   * 'direct': whenever the socket is not known to be full. 'queued' (the seed's strict separation):
   * level-triggered, only from a writable event (write interest is what announces it); edge-
   * triggered, the writable bit rides on every event of the socket, so writes wait for the end of
   * the event in flight, and outside one go at once (no new edge would come for a socket that
   * never filled up).
   */
  private sendsNow(): boolean {
    if (this.connecting || this.blocked) return false;
    return !this.queuedWrites || (this.edgeTriggered && !this.inEvent);
  }

  /** The queue grew outside a flush: send it, or register the interest that will. */
  private queueChanged(): void {
    if (this.inEvent) return; // The event's end takes care of it.
    if (!this.queue.isEmpty && this.sendsNow()) this.flush();
    if (!this.destroyed) this.applyInterest();
  }

  private sendNow(bytes: Uint8Array, owned: boolean): void {
    let sent: number;
    try {
      sent = binding.send(this.fd, bytes, 0, bytes.length);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (sent === bytes.length) {
      this.queue.sent += sent;
      this.touch();
      return;
    }
    if (sent > 0) {
      this.queue.sent += sent;
      this.touch();
    }
    const rest = sent > 0 ? bytes.subarray(sent) : bytes;
    this.queue.pushBytes(owned ? rest : Buffer.from(rest), false);
    this.notePeak();
    this.blocked = true;
    this.queueChanged();
  }

  private notePeak(): void {
    if (this.queue.bytes > this.peakWritableLength) this.peakWritableLength = this.queue.bytes;
  }

  private checkHighWater(): boolean {
    if (this.queue.bytes < this.highWater) return true;
    this.needDrain = true;
    return false;
  }

  private peerEnded(): void {
    this.readEnded = true;
    if (this.closing) {
      // The lingering close is over once the peer has finished too, and our queue is out.
      if (this.writeShut) this.destroy();
      return;
    }
    if (this.onEnd === null) this.end();
    else this.call(this.onEnd);
    if (!this.destroyed && this.writeShut) this.destroy();
  }

  /** The queue is empty after end(): half-close, or close if the peer has finished as well. */
  private finishWriting(): void {
    if (this.readEnded) {
      if (this.call(this.onFinish) && !this.destroyed) this.destroy();
      return;
    }
    try {
      binding.shutdown(this.fd, constants.SHUT_WR);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.writeShut = true;
    if (!this.call(this.onFinish) || this.destroyed) return;
    // The peer may have finished already; under edge-triggered epoll no new event would say so.
    if (this.closing) this.discardUntilEnd();
  }

  /** Reads and drops input until the peer's end of stream (then closes) or EAGAIN. */
  private discardUntilEnd(): void {
    const buffer = readBuffer(this.readSize);
    for (;;) {
      let n: number;
      try {
        n = binding.recv(this.fd, buffer, 0, buffer.length);
      } catch (err) {
        this.fail(err);
        return;
      }
      if (n === WOULD_BLOCK) return;
      if (n === 0) {
        this.readEnded = true;
        this.destroy();
        return;
      }
      this.bytesRead += n;
    }
  }

  /** Edge-triggered resume: an event of our own, as if the socket had reported both bits. */
  private resumeReading(): void {
    if (this.destroyed || this.paused || this.connecting) return;
    this.onEvents(EVENT_READ | EVENT_WRITE);
  }

  private timedOut(): void {
    if (this.destroyed) return;
    if (this.onTimeout !== null) this.call(this.onTimeout);
    else this.fail(systemError(constants.errno.ETIMEDOUT, 'idle', `(no activity for ${this.idleMs} ms)`));
  }

  /** Runs a user callback; one that throws destroys this connection with its exception. */
  private call<A extends unknown[]>(callback: ((this: Connection, ...args: A) => void) | null, ...args: A): boolean {
    if (callback === null) return true;
    try {
      callback.apply(this, args);
      return true;
    } catch (err) {
      this.fail(err);
      return false;
    }
  }

  private fail(err: unknown): void {
    this.destroy(err instanceof Error ? err : new Error(String(err)));
  }

  private touch(): void {
    if (this.idle !== null && this.idle.list !== null) idleTimersOf(this.reactor).refresh(this.idle);
  }

  /**
   * Registers exactly the interest the state asks for, and nothing when nothing is wanted.
   * Edge-triggered: reading and writing, once, never changed: every wake-up the socket sees carries
   * its writable bit too, so a queued reply goes out in the turn of the read that queued it, and no
   * epoll_ctl is ever spent on interest (a paused reader is read again on resume, by itself).
   */
  private applyInterest(): void {
    if (this.destroyed || this.connectFailure !== null) return;
    let wanted = 0;
    if (this.edgeTriggered) {
      wanted = EVENT_READ | EVENT_WRITE;
    } else if (this.connecting) {
      wanted = EVENT_WRITE;
    } else {
      const discarding = this.closing && this.writeShut;
      if (!this.readEnded && (discarding || (!this.paused && !this.closing))) wanted |= EVENT_READ;
      if (!this.queue.isEmpty || (this.writeEnded && !this.writeShut)) wanted |= EVENT_WRITE;
    }
    if (wanted === this.interest) return;
    if (wanted === 0) this.reactor.remove(this.fd);
    else if (this.interest === 0) this.reactor.add(this.fd, wanted, this.handler);
    else this.reactor.modify(this.fd, wanted);
    this.interest = wanted;
  }
}

/** True for the errors a peer causes by going away: worth counting, not worth logging. */
export function isDisconnect(err: unknown): boolean {
  return isSystemError(err, 'ECONNRESET') || isSystemError(err, 'EPIPE') || isSystemError(err, 'ETIMEDOUT');
}
