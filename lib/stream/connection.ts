/**
 * One non-blocking stream connection on a reactor: what every server on iomux needs, written once.
 *
 * - The lifecycle is one explicit state (lifecycle.ts; docs/streams.md draws the table): each call
 *   and each event is a transition. Beside it only orthogonal flags: paused, corked, and whether the
 *   socket is full.
 * - Writing: `write()` sends at once when it can and queues the rest (the 'queued' strategy, the
 *   seed's strict read/write separation, always waits for a writable event instead). It returns
 *   false once `highWater` bytes are queued; `onDrain` runs when the queue is back at `lowWater`.
 *   Writes made while corked (always during `onData`) leave together in one gathered write. Once our
 *   side is ending, closing or closed, write(), end() and sendFile() drop what they are given and
 *   return false (counted in `droppedWrites`): the peer may go at any moment, and a broadcast loop
 *   must not blow up on the one that went.
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
 * - No re-entry: onEnd, onDrain, onFinish, onError, onClose and sendFile's `done` are delivered from
 *   the reactor's turn (its deferred queue), never inside a call the user made (write, end, close,
 *   destroy, pause, resume, sendFile): a broadcast loop never sees its set change under it.
 * - Every callback is guarded: one that throws destroys this connection alone (onError and onClose
 *   then run, once each); what nobody else hears goes to `log` (default: stderr).
 * - Idle timeout: refreshed by progress, O(1) per refresh (see idle-timers.ts); re-armed by activity
 *   after an onTimeout that kept the connection; `{ on: 'read' }` counts only what the peer sends.
 * - Edge-triggered epoll: reads, writes and discards loop until EAGAIN (reads: to a short read, with `shortReads`).
 */
import { lookup } from 'node:dns';
import { isSystemError, systemError } from '../errors';
import { binding, constants, SocketAddress } from '../native';
import { Reactor } from '../reactor';
import { EpollSelector } from '../selectors/epoll';
import { IoUringSelector } from '../selectors/io-uring';
import { EVENT_CONDITION, EVENT_READ, EVENT_WRITE } from '../selectors/selector';
import { Timer } from '../timer-queue';
import { connectTo, Endpoint, isUnix, numericHost, streamSocket, withAddress } from './endpoint';
import { IdleEntry, IdleTimers, touchEntry } from './idle-timers';
import {
  acceptsWrites, afterClose, afterEnd, afterFlushed, afterPeerEnd, deliversData, flushingToShut, State, STATE_NAMES, StateName,
} from './lifecycle';
import { readBuffer } from './read-buffer';
import { FileSegment, FlushResult, WriteQueue } from './write-queue';

export type WriteStrategy = 'direct' | 'queued';
export type { StateName } from './lifecycle';

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
  /**
   * Where what nobody else hears is reported: a callback's exception when there is no onError to
   * take it, an exception thrown by onError or onClose, and (debug mode) dropped writes. Default:
   * standard error. Never silent.
   */
  log?: (line: string) => void;
  /**
   * Debug mode: after each onData returns, the shared read buffer's bytes it was shown are
   * overwritten (0xdd), so code that kept the view instead of a copy fails loudly in its own tests;
   * and each dropped write is logged with the stack that made it. Default: on when the environment
   * variable IOMUX_DEBUG names `stream` (IOMUX_DEBUG=stream).
   */
  debug?: boolean;
  /**
   * Edge-triggered epoll only (ignored elsewhere; `Connection.shortReads` says whether it is in effect): end
   * a turn's reading at a short read (recv returned less than readSize) instead of reading on to EAGAIN,
   * saving that recv. The socket is then registered with EPOLLRDHUP and EPOLLPRI, and an event carrying
   * RDHUP, HUP, ERR or PRI is still read to EAGAIN: the cases docs/readiness-lab.md (short-read) shows safe.
   * Default false.
   */
  shortReads?: boolean;
}

export interface ConnectOptions extends ConnectionOptions {
  /** Give up (ETIMEDOUT) if the connection is not established within this many ms. Default: no limit. */
  timeoutMs?: number;
}

export interface IdleTimeoutOptions {
  /**
   * What counts as activity: 'any' (default: progress in either direction) or 'read' (only bytes
   * from the peer: a silent client in a busy room times out although others' messages reach it).
   */
  on?: 'any' | 'read';
}

/**
 * What onError and onClose receive: a system error (`code` 'ECONNRESET', `errno`, `syscall`; with
 * `address` and `port` for connect), a timeout (`code` 'ETIMEDOUT'), or what a callback threw.
 */
export interface ConnectionError extends Error {
  code?: string;
  errno?: number;
  syscall?: string;
  address?: string;
  port?: number;
}

const WOULD_BLOCK = -1;
const DEFAULT_HIGH_WATER = 64 * 1024;
const DEFAULT_READ_SIZE = 64 * 1024;
const DEFAULT_LINGER_MS = 30000;
/** What debug mode writes over a read view once onData has returned. */
export const POISON = 0xdd;
const DEBUG_FROM_ENVIRONMENT = /(^|[\s,])stream($|[\s,])/.test(process.env.IOMUX_DEBUG ?? '');

/** Callbacks waiting for the reactor's turn, one bit each (one deferred entry per connection and turn). */
const enum Pending {
  End = 1,
  Drain = 2,
  Done = 4,
  Finish = 8,
  Close = 16,
}

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

/** The default `log` of connections and listeners: standard error, never silent. */
export function stderrLog(line: string): void {
  process.stderr.write(`iomux: ${line}\n`);
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** sendFile's checks at the call, naming its own arguments (a TLS connection's sendFile makes the same). */
export function checkSendFileArguments(fd: number, offset: number, length: number, done: unknown): void {
  if (typeof fd !== 'number' || !Number.isInteger(fd)) throw new TypeError(`sendFile: fd must be an integer file descriptor; got ${String(fd)}`);
  if (fd < 0) throw new RangeError(`sendFile: fd must be >= 0; got ${fd}`);
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`sendFile: offset must be an integer >= 0; got ${String(offset)}`);
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) throw new RangeError(`sendFile: length must be an integer >= 0; got ${String(length)}`);
  if (done !== undefined && typeof done !== 'function') throw new TypeError('sendFile: done must be a function');
}

/** The error a range's `done` gets when sendFile() came after our side ended. */
export function writeAfterEnd(state: StateName): ConnectionError {
  return Object.assign(new Error(`write after end (the connection is ${state})`), { code: 'ERR_STREAM_WRITE_AFTER_END' });
}

// `any` as the default, not `unknown`: a plain `Connection` (say, a helper's parameter) then takes a
// Connection<Session> too, which the `this`-typed callbacks would otherwise make invariant.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export class Connection<T = any> {
  /** Yours: per-connection state of the protocol built on top. */
  data: T = undefined as T;
  /** The connection is established (connect() only; accepted connections start established). */
  onConnect: ((this: Connection<T>) => void) | null = null;
  /** Bytes arrived: a view of the shared read buffer, valid until this returns. */
  onData: ((this: Connection<T>, data: Buffer) => void) | null = null;
  /**
   * While set, reads instead of recv + onData: called with the socket whenever it is readable, it
   * moves the bytes itself (an upload into a file inside the kernel: `recvfile`) and returns, as
   * recv does, how many it took, 0 at the peer's end of stream or -1 when none were there. What it
   * throws fails the connection, as a failed recv does.
   */
  reader: ((this: Connection<T>, fd: number) => number) | null = null;
  /** The peer finished sending. Default (null): end() our side too once the queue is flushed. */
  onEnd: ((this: Connection<T>) => void) | null = null;
  /** The queue fell back to lowWater after a write() returned false. */
  onDrain: ((this: Connection<T>) => void) | null = null;
  /**
   * After end() (or close()): everything queued was handed to the kernel and our side is shut —
   * half-closed, or closed when the peer had finished first. Once, before onClose; never if the
   * connection failed first. A protocol that confirms a transfer on another connection (FTP's 226)
   * answers here instead of waiting for the peer to close.
   */
  onFinish: ((this: Connection<T>) => void) | null = null;
  /** No progress for the idle timeout. Default (null): destroy with an ETIMEDOUT error. */
  onTimeout: ((this: Connection<T>) => void) | null = null;
  /** The connection failed (reset, refused, timed out, a callback threw). At most once, before onClose. */
  onError: ((this: Connection<T>, err: ConnectionError) => void) | null = null;
  /** Exactly once: the descriptor is closed. `err` is the error that ended it, or null. */
  onClose: ((this: Connection<T>, err: ConnectionError | null) => void) | null = null;

  bytesRead = 0;
  /** The most bytes this connection ever had queued after a write had its chance to go out. */
  peakWritableLength = 0;
  /** Writes (and ends, and sendFiles) dropped because our side had ended: a count to watch, not an error. */
  droppedWrites = 0;
  /** @internal The Listener that tracks this connection forgets it here, just before onError and onClose. */
  untrack: ((conn: Connection<T>) => void) | null = null;
  /**
   * @internal The layer speaking a protocol over this connection (a TlsConnection): Listener.shutdown
   * closes through it, so that the close is that protocol's own (TLS: close_notify first); and it
   * hears at once when our side is shut (`flushed`), so its lifecycle moves when ours does, not a
   * turn later with onFinish.
   */
  layer: { close(): void; flushed?(): void } | null = null;
  /** The socket (-1 while a host name is being resolved, and once closed by a failed resolution). */
  readonly fd: number;

  readonly edgeTriggered: boolean;
  /** Reading ends at a short read (ConnectionOptions.shortReads, on edge-triggered epoll). */
  readonly shortReads: boolean;
  private state: State;
  /** While Connecting: the state to enter once established (end() or close() may come first). */
  private requested = State.Open;
  private readonly queue: WriteQueue;
  private readonly handler = (events: number): void => this.onEvents(events);
  private readonly highWater: number;
  private readonly lowWater: number;
  private readonly readSize: number;
  private readonly queuedWrites: boolean;
  private readonly lingerMs: number;
  /** @internal Where what nobody else hears goes (ConnectionOptions.log); a layer above reports there too. */
  readonly log: (line: string) => void;
  /** @internal Debug mode (ConnectionOptions.debug); a layer above poisons its own views by it too. */
  readonly debug: boolean;
  private idle: IdleEntry | null = null;
  private idleMs = 0;
  private idleOnReadOnly = false;
  private connectTimer: Timer | null = null;
  private lingerTimer: Timer | null = null;
  /** Where connect() went (for its errors' address). */
  private endpoint: Endpoint | null = null;
  /** What is registered with the reactor (0: not registered). */
  private interest = 0;
  private paused = false;
  private corks = 0;
  /** The socket's buffer is full: writes wait for a writable event. */
  private blocked = false;
  /** write() said stop: onDrain is owed once the queue is back at lowWater. */
  private needDrain = false;
  /** Reading stopped inside a read loop (a pause), so under ET the edge may already be spent. */
  private readInterrupted = false;
  private inEvent = false;
  private closeError: Error | null = null;
  /** Callbacks owed from the reactor's turn (Pending bits), and the sendFile completions among them. */
  private pending = 0;
  private dones: ((err: Error | null) => void)[] = [];
  private doneErrors: (Error | null)[] = [];
  private deliverPending: (() => void) | null = null;
  /** resume() under edge-triggering: read what the spent edge announced, from the reactor's turn. */
  private resumeLater: (() => void) | null = null;

  /**
   * Wraps the connected, non-blocking stream socket `fd` (the connection owns it from now on) and
   * registers it with `reactor`. Throws, owning nothing, if the reactor cannot watch it (select:
   * fd >= FD_SETSIZE).
   */
  constructor(readonly reactor: Reactor, fd: number, options: ConnectionOptions = {},
    /** connect() only: the connect is in progress. */
    connecting?: 'connecting') {
    this.highWater = options.highWater ?? DEFAULT_HIGH_WATER;
    this.lowWater = options.lowWater ?? Math.floor(this.highWater / 4);
    if (!(this.highWater > 0) || !(this.lowWater >= 0) || this.lowWater >= this.highWater) {
      throw new RangeError('Need 0 <= lowWater < highWater');
    }
    this.readSize = options.readSize ?? DEFAULT_READ_SIZE;
    if (!Number.isInteger(this.readSize) || this.readSize < 1) throw new RangeError('readSize must be an integer >= 1');
    const strategy = options.write ?? 'direct';
    if (strategy !== 'direct' && strategy !== 'queued') throw new RangeError(`write must be 'direct' or 'queued'; got ${String(strategy)}`);
    if (options.log !== undefined && typeof options.log !== 'function') throw new TypeError('log must be a function');
    this.queuedWrites = strategy === 'queued';
    this.lingerMs = options.lingerMs ?? DEFAULT_LINGER_MS;
    this.log = options.log ?? stderrLog;
    this.debug = options.debug ?? DEBUG_FROM_ENVIRONMENT;
    this.edgeTriggered = isEdgeTriggered(reactor);
    // io_uring has no EVENT_CONDITION, and asking it for POLLPRI would make every event look urgent.
    this.shortReads = options.shortReads === true && this.edgeTriggered && reactor.selector instanceof EpollSelector;
    this.queue = new WriteQueue((done, err) => this.settled(done, err));
    this.fd = fd;
    this.state = connecting === 'connecting' ? State.Connecting : State.Open;
    this.applyInterest();
    if (options.idleTimeoutMs) this.setIdleTimeout(options.idleTimeoutMs);
  }

  /**
   * Starts a non-blocking connect to `endpoint` and returns the connection at once. Writes made
   * before it is established are queued. `onConnect` runs once it is; a refused or timed-out connect
   * ends in one `onError` (code ECONNREFUSED, ETIMEDOUT, ..., with `address` and `port`) and
   * `onClose`, always from the reactor's turn. A host name other than localhost is resolved with
   * node:dns, which answers on Node's event loop: an attached reactor (docs/streams.md, "Host names").
   */
  static connect<T = any>(reactor: Reactor, endpoint: Endpoint, options: ConnectOptions = {}): Connection<T> {
    if (options.timeoutMs !== undefined && !(options.timeoutMs >= 0)) throw new RangeError(`timeoutMs must be >= 0; got ${options.timeoutMs}`);
    let target = endpoint;
    if (!isUnix(endpoint)) {
      const host = numericHost(endpoint.host);
      if (host === null) return Connection.connectByName<T>(reactor, endpoint, options);
      target = { host, port: endpoint.port };
    }
    const fd = streamSocket(target);
    let failure: unknown = null;
    try {
      connectTo(fd, target); // Established or in progress: either way, writable says when.
    } catch (err) {
      failure = err;
    }
    let conn: Connection<T>;
    try {
      conn = new Connection<T>(reactor, failure === null ? fd : -1, options, 'connecting');
    } catch (err) {
      binding.close(fd);
      throw err;
    }
    conn.endpoint = target;
    if (failure !== null) {
      binding.close(fd);
      conn.destroy(asError(failure)); // Reported from the turn, as every other outcome: the caller sets its callbacks first.
    } else {
      conn.startConnectTimer(options.timeoutMs);
    }
    return conn;
  }

  /**
   * connect() as a promise: resolves with the established connection (reading held until the
   * promise's callbacks have run, so onData set there misses nothing), rejects with the error that
   * ended it. The promise settles from Node's event loop: use an attached reactor.
   */
  static connectAsync<T = any>(reactor: Reactor, endpoint: Endpoint, options: ConnectOptions = {}): Promise<Connection<T>> {
    return new Promise((resolve, reject) => {
      const conn = Connection.connect<T>(reactor, endpoint, options);
      conn.pause();
      conn.onConnect = function () {
        this.onConnect = this.onError = this.onClose = null;
        resolve(this);
        // Promise callbacks run before the reactor's next turn: resume after the caller's.
        queueMicrotask(() => queueMicrotask(() => {
          if (this.isPaused && !this.closed) this.resume();
        }));
      };
      conn.onError = (err) => reject(err);
      conn.onClose = (err) => reject(err ?? new Error('The connection closed before it was established'));
    });
  }

  /** connect() to a host name: the socket is made once node:dns answers. */
  private static connectByName<T>(reactor: Reactor, endpoint: Endpoint & { host?: string; port?: number }, options: ConnectOptions): Connection<T> {
    if (reactor.isRunning) {
      const err = new Error(`Cannot resolve ${JSON.stringify(endpoint.host)} while run() blocks this thread: node:dns answers on ` +
        'Node\'s event loop. Attach the reactor, or pass a numeric address (resolve it first with dns.promises.lookup)');
      throw Object.assign(err, { code: 'ERR_IOMUX_LOOKUP_NEEDS_EVENT_LOOP' });
    }
    const conn = new Connection<T>(reactor, -1, options, 'connecting');
    conn.endpoint = endpoint;
    conn.startConnectTimer(options.timeoutMs);
    lookup(endpoint.host!, (err, address) => conn.resolved(err, address, endpoint.port ?? 0));
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

  /** Where the lifecycle is (docs/streams.md, "Lifecycle"). */
  get lifecycle(): StateName {
    return STATE_NAMES[this.state];
  }

  /** write(), end() and sendFile() are accepted: our side has not ended (connecting counts: writes queue). */
  get writable(): boolean {
    return acceptsWrites(this.state === State.Connecting ? this.requested : this.state);
  }

  /** close() was called, or both sides are finishing: the descriptor closes without more from you. */
  get closing(): boolean {
    const state = this.state === State.Connecting ? this.requested : this.state;
    return state === State.Closing || state === State.Finishing || state === State.Lingering;
  }

  /** True once the descriptor is closed (onClose may still be on its way, from the reactor's turn). */
  get destroyed(): boolean {
    return this.state === State.Closed;
  }

  /** The same as `destroyed`. */
  get closed(): boolean {
    return this.state === State.Closed;
  }

  get isConnecting(): boolean {
    return this.state === State.Connecting;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  get remoteAddress(): SocketAddress {
    return binding.getpeername(this.fd);
  }

  get localAddress(): SocketAddress {
    return binding.getsockname(this.fd);
  }

  /**
   * Queues `chunk` (a string goes as UTF-8) and sends what the socket takes now. Returns false once
   * highWater bytes are queued: wait for onDrain before writing more. Once our side has ended
   * (end(), close(), destroy(), a failure) the chunk is dropped and false returned — never a throw:
   * the peer may go at any time. A write that meets a reset returns false; onError and onClose
   * follow from the reactor's turn.
   */
  write(chunk: Uint8Array | string): boolean {
    if (!this.writable) return this.dropped('write');
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
    return !this.destroyed && this.checkHighWater();
  }

  /**
   * Queues `length` bytes of the open file `fd` from `offset` (the file's own position is neither
   * used nor moved; the descriptor stays yours: keep it open until `done`). `done(err)` runs from the
   * reactor's turn once the range is sent, or with the error that dropped it (the connection ended
   * first, or our side had ended already: then this returns false). A file that turns out shorter
   * than the range destroys the connection (the stream would be corrupt).
   */
  sendFile(fd: number, offset: number, length: number, done?: (err: Error | null) => void): boolean {
    checkSendFileArguments(fd, offset, length, done);
    if (!this.writable) {
      if (done !== undefined) this.settled(done, this.closeError ?? writeAfterEnd(this.lifecycle));
      return this.dropped('sendFile');
    }
    this.queue.pushFile(new FileSegment(fd, offset, offset + length, done ?? null));
    if (this.corks === 0) this.queueChanged();
    return !this.destroyed;
  }

  /** Holds writes until uncork(), so that they leave together in one gathered write. Nests. */
  cork(): void {
    this.corks++;
  }

  uncork(): void {
    if (this.corks === 0 || --this.corks > 0 || this.destroyed) return;
    if (!this.queue.isEmpty) {
      if (this.sendsNow()) this.flush();
    } else if (flushingToShut(this.state)) {
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
      this.reactor.defer(this.resumeLater ??= () => this.resumeReading());
    }
    if (!this.inEvent) this.applyInterest();
  }

  /**
   * Flushes, then half-closes our side (SHUT_WR); reading goes on until the peer's end of stream.
   * Returns false (and drops `chunk`) once our side had already ended.
   */
  end(chunk?: Uint8Array | string): boolean {
    if (!this.writable) return chunk === undefined ? false : this.dropped('end');
    if (chunk !== undefined) {
      this.write(chunk);
      if (this.destroyed) return false; // The send failed: the connection is gone.
    }
    if (this.state === State.Connecting) {
      this.requested = afterEnd(this.requested);
      return true;
    }
    this.state = afterEnd(this.state);
    if (this.corks > 0) return true; // uncork() finishes.
    if (this.queue.isEmpty) this.finishWriting();
    else this.queueChanged();
    return true;
  }

  /**
   * The graceful close: no more data is delivered; the queue is flushed; our side half-closes; input
   * is discarded until the peer's end of stream; then the descriptor is closed. A peer that does not
   * finish within `lingerMs` is cut off (destroy).
   */
  close(): void {
    if (this.destroyed || this.closing) return;
    this.paused = false;
    this.lingerTimer = this.reactor.setTimeout(() => {
      this.lingerTimer = null;
      this.destroy();
    }, this.lingerMs);
    if (this.state === State.Connecting) {
      this.requested = afterClose(this.requested);
      return;
    }
    this.state = afterClose(this.state);
    if (this.state === State.Lingering) {
      this.discardUntilEnd();
    } else if (this.corks === 0) {
      if (this.queue.isEmpty) this.finishWriting();
      else this.queueChanged();
    }
    if (!this.destroyed && !this.inEvent) this.applyInterest();
  }

  /** Closes now, dropping whatever is queued. `err`, if given, is reported through onError first (from the reactor's turn). */
  destroy(err?: Error): void {
    if (this.destroyed) return;
    this.state = State.Closed;
    this.closeError = err ?? null;
    if (this.idle !== null) idleTimersOf(this.reactor).untrack(this.idle);
    if (this.connectTimer !== null) this.reactor.clearTimer(this.connectTimer);
    if (this.lingerTimer !== null) this.reactor.clearTimer(this.lingerTimer);
    this.connectTimer = this.lingerTimer = null;
    // A closed reactor has forgotten every descriptor already.
    if (this.interest !== 0 && !this.reactor.selector.closed) this.reactor.remove(this.fd);
    this.interest = 0;
    if (this.fd >= 0) {
      try {
        binding.close(this.fd);
      } catch {
        // EBADF cannot happen (we own it); anything else leaves nothing for us to do.
      }
    }
    this.queue.clear(err ?? new Error('The connection was closed before this was sent'));
    this.schedule(Pending.Close);
  }

  /**
   * Close if idle for `ms` (0 turns it off). Progress starts the period over: in either direction,
   * or with `{ on: 'read' }` only bytes from the peer. After an onTimeout that keeps the
   * connection, the next activity starts a new period (as Node's socket.setTimeout does).
   */
  setIdleTimeout(ms: number, options: IdleTimeoutOptions = {}): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`The idle timeout must be a number of ms >= 0; got ${ms}`);
    const on = options.on ?? 'any';
    if (on !== 'any' && on !== 'read') throw new RangeError(`on must be 'any' or 'read'; got ${String(on)}`);
    if (this.destroyed) return;
    const timers = idleTimersOf(this.reactor);
    this.idleMs = ms;
    this.idleOnReadOnly = on === 'read';
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
      this.handleEvents(events);
    } finally {
      this.inEvent = false;
    }
    if (this.destroyed) return;
    // Edge-triggered, what the event queued goes out now unless the socket is known to be full: no
    // new writable edge comes for a socket that never filled up, and not every mechanism's event
    // carries the writable bit (epoll's does; an io_uring completion has only its wake-up's events).
    if (this.edgeTriggered && !this.blocked && this.state !== State.Connecting &&
      (!this.queue.isEmpty || flushingToShut(this.state))) this.onWritable();
    if (!this.destroyed) this.applyInterest();
  }

  private handleEvents(events: number): void {
    if (this.state === State.Connecting) {
      this.finishConnecting();
      // Under edge-triggered epoll, bytes that came with this event get no event of their own.
      if (!this.edgeTriggered || this.destroyed || this.state === State.Connecting) return;
    }
    if (events & EVENT_READ) this.readable(events);
    if (events & EVENT_WRITE && !this.destroyed) this.onWritable();
  }

  private startConnectTimer(timeoutMs: number | undefined): void {
    if (timeoutMs === undefined) return;
    this.connectTimer = this.reactor.setTimeout(() => {
      this.connectTimer = null;
      this.fail(systemError(constants.errno.ETIMEDOUT, 'connect', `(not established within ${timeoutMs} ms)`));
    }, timeoutMs);
  }

  /** node:dns answered for connectByName(). */
  private resolved(err: Error | null, address: string, port: number): void {
    if (this.state !== State.Connecting) return; // Destroyed (or timed out) meanwhile.
    if (err !== null) {
      this.destroy(err);
      return;
    }
    const target = { host: address, port };
    this.endpoint = target;
    let fd: number;
    try {
      fd = streamSocket(target);
    } catch (socketErr) {
      this.destroy(asError(socketErr));
      return;
    }
    (this as { fd: number }).fd = fd;
    try {
      connectTo(fd, target);
      this.applyInterest();
    } catch (connectErr) {
      this.destroy(asError(connectErr));
    }
  }

  private finishConnecting(): void {
    const err = binding.getsockopt(this.fd, constants.SOL_SOCKET, constants.SO_ERROR) as number;
    if (err !== 0) {
      this.fail(this.endpoint === null ? systemError(err, 'connect') : withAddress(systemError(err, 'connect'), this.endpoint));
      return;
    }
    this.state = this.requested;
    if (this.connectTimer !== null) this.reactor.clearTimer(this.connectTimer);
    this.connectTimer = null;
    this.touchRead();
    if (!this.call(this.onConnect, 'onConnect')) return;
    if (this.destroyed) return;
    if (!this.queue.isEmpty) this.flush();
    else if (flushingToShut(this.state)) this.finishWriting();
  }

  private readable(events: number): void {
    if (this.state === State.Lingering) {
      this.discardUntilEnd();
      return;
    }
    // Closing: input waits for the discard that follows our shutdown; read-ended: nothing more comes.
    if (!deliversData(this.state)) return;
    const buffer = readBuffer(this.readSize);
    for (;;) {
      if (this.paused) {
        this.readInterrupted = true;
        return;
      }
      const reader = this.reader;
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
      this.touchRead();
      if (reader === null) {
        this.cork();
        const delivered = this.deliverData(buffer.subarray(0, n));
        this.uncork();
        if (this.debug) buffer.fill(POISON, 0, n);
        if (!delivered) return;
      }
      if (!deliversData(this.state)) return;
      // Level-triggered: one read per wake-up keeps connections fair; the next wait reports the rest.
      if (!this.edgeTriggered) return;
      // A short read found the queue empty: what arrives later makes a new edge, unless the event said more.
      if (this.shortReads && n < this.readSize && (events & EVENT_CONDITION) === 0) return;
    }
  }

  /** A writable event. */
  private onWritable(): void {
    this.blocked = false;
    if (!this.queue.isEmpty) this.flush();
    else if (flushingToShut(this.state)) this.finishWriting();
  }

  /**
   * Sends the queue until it is empty or the socket is full, then what follows from either.
   * onDrain is owed once the queue is back at lowWater; it runs from the reactor's turn, and what it
   * writes goes out at once (outside an event a write is sent directly).
   */
  private flush(): void {
    let result: FlushResult;
    try {
      result = this.queue.flush(this.fd);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.touchWrite();
    this.blocked = result === FlushResult.Blocked;
    if (this.needDrain && this.queue.bytes <= this.lowWater) {
      this.needDrain = false;
      this.schedule(Pending.Drain);
    }
    if (!this.blocked && this.queue.isEmpty && flushingToShut(this.state)) this.finishWriting();
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
    if (this.state === State.Connecting || this.blocked) return false;
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
      this.touchWrite();
      return;
    }
    if (sent > 0) {
      this.queue.sent += sent;
      this.touchWrite();
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

  /** A write, end or sendFile after our side ended: counted, reported in debug mode, and false. */
  private dropped(call: string): false {
    this.droppedWrites++;
    if (this.debug) this.log(`fd ${this.fd}: ${call}() on a connection that is ${this.lifecycle}: dropped\n${new Error('dropped here').stack}`);
    return false;
  }

  private peerEnded(): void {
    const before = this.state;
    this.state = afterPeerEnd(before);
    if (this.state === State.Closed) {
      // Our side was shut already: both are done (after a half-close of ours, onEnd still says so).
      this.state = before;
      if (before === State.WriteShut && this.onEnd !== null) this.schedule(Pending.End);
      this.destroy();
      return;
    }
    if (before === State.Closing) return; // The close goes on; no data, no onEnd.
    if (this.onEnd === null) this.end();
    else this.schedule(Pending.End);
  }

  /** The queue is empty after end() or close(): half-close, or close if the peer has finished as well. */
  private finishWriting(): void {
    const next = afterFlushed(this.state);
    if (next === State.Closed) {
      this.schedule(Pending.Finish);
      this.destroy();
      return;
    }
    try {
      binding.shutdown(this.fd, constants.SHUT_WR);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.state = next;
    this.layer?.flushed?.();
    this.schedule(Pending.Finish);
    // The peer may have finished already; under edge-triggered epoll no new event would say so.
    if (this.state === State.Lingering) this.discardUntilEnd();
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
        this.destroy();
        return;
      }
      this.bytesRead += n;
    }
  }

  /** Edge-triggered resume: an event of our own, as if the socket had reported both bits. */
  private resumeReading(): void {
    if (this.destroyed || this.state === State.Connecting || this.paused) return;
    this.onEvents(EVENT_READ | EVENT_WRITE | EVENT_CONDITION); // Its edge may be spent: read to EAGAIN.
  }

  private timedOut(): void {
    if (this.destroyed) return;
    if (this.onTimeout !== null) this.call(this.onTimeout, 'onTimeout');
    else this.fail(systemError(constants.errno.ETIMEDOUT, 'idle', `(no activity for ${this.idleMs} ms)`));
  }

  /** Owes `what` from the reactor's turn: one deferred entry per connection however many are owed. */
  private schedule(what: Pending): void {
    if (this.pending === 0) this.reactor.defer(this.deliverPending ??= () => this.deliver());
    this.pending |= what;
  }

  /** A file range went out (err null) or was dropped: its `done` is owed from the reactor's turn. */
  private settled(done: (err: Error | null) => void, err: Error | null): void {
    this.dones.push(done);
    this.doneErrors.push(err);
    this.schedule(Pending.Done);
  }

  /** Runs what is owed, in the order things happen: end, drain, file completions, finish, then error and close. */
  private deliver(): void {
    // What these callbacks cause (an onEnd that calls end(), say) is owed too: deliver it in the same
    // turn, after the callback has returned (never inside it). Bounded: a callback that keeps owing
    // waits for the next turn.
    for (let round = 0; round < 8 && this.pending !== 0; round++) this.deliverOwed();
    if (this.pending !== 0) {
      const owed = this.pending;
      this.pending = 0;
      this.schedule(owed);
    }
  }

  private deliverOwed(): void {
    const owed = this.pending;
    this.pending = 0;
    if (owed & Pending.End) this.call(this.onEnd, 'onEnd');
    if (owed & Pending.Drain && !this.destroyed) this.call(this.onDrain, 'onDrain');
    if (owed & Pending.Done) {
      const dones = this.dones;
      const errors = this.doneErrors;
      this.dones = [];
      this.doneErrors = [];
      for (let i = 0; i < dones.length; i++) this.call(dones[i], 'sendFile done', errors[i]);
    }
    if (owed & Pending.Finish) this.call(this.onFinish, 'onFinish');
    if (owed & Pending.Close) {
      // What a callback throws here has no connection left to destroy: it is logged.
      const err = this.closeError;
      // Forgotten by its listener first: onClose sees the listener's count without it.
      this.untrack?.(this);
      if (err !== null && this.onError !== null) this.callLast(this.onError, 'onError', err);
      this.callLast(this.onClose, 'onClose', err);
    }
  }

  /** onData, guarded like call() but without its argument array: the hot path. */
  private deliverData(data: Buffer): boolean {
    const onData = this.onData;
    if (onData === null) return true;
    try {
      onData.call(this, data);
      return true;
    } catch (err) {
      this.threw('onData', err);
      return false;
    }
  }

  /**
   * Runs a user callback; one that throws destroys this connection with its exception (logged too
   * when no onError will hear of it). Returns whether it returned normally.
   */
  private call<A extends unknown[]>(callback: ((this: Connection<T>, ...args: A) => void) | null, name: string, ...args: A): boolean {
    if (callback === null) return true;
    try {
      callback.apply(this, args);
      return true;
    } catch (err) {
      this.threw(name, err);
      return false;
    }
  }

  /** @internal A callback threw: this connection is destroyed with the exception (logged when no onError will hear of it). A layer above (TlsConnection) reports its own callbacks' throws here too. */
  threw(name: string, err: unknown): void {
    if (this.destroyed || this.onError === null) this.log(`fd ${this.fd}: ${name} threw: ${describe(err)}`);
    this.fail(err);
  }

  /** onError and onClose: nothing is left to destroy, so what they throw is logged. */
  private callLast<A>(callback: ((this: Connection<T>, arg: A) => void) | null, name: string, arg: A): void {
    if (callback === null) return;
    try {
      callback.call(this, arg);
    } catch (err) {
      this.log(`fd ${this.fd}: ${name} threw: ${describe(err)}`);
    }
  }

  private fail(err: unknown): void {
    this.destroy(asError(err));
  }

  /** Bytes from the peer: the idle period starts over. */
  private touchRead(): void {
    if (this.idle !== null) this.refreshIdle();
  }

  /** Bytes to the peer: the idle period starts over unless only reads count. */
  private touchWrite(): void {
    if (this.idle !== null && !this.idleOnReadOnly) this.refreshIdle();
  }

  private refreshIdle(): void {
    const idle = this.idle!;
    if (idle.list !== null) touchEntry(idle); // No per-reactor lookup on the read path.
    else if (this.idleMs > 0 && !this.destroyed) idleTimersOf(this.reactor).track(idle, this.idleMs); // Fired and kept.
  }

  /**
   * Registers exactly the interest the state asks for, and nothing when nothing is wanted.
   * Edge-triggered: reading and writing, once, never changed: every wake-up the socket sees carries
   * its writable bit too, so a queued reply goes out in the turn of the read that queued it, and no
   * epoll_ctl is ever spent on interest (a paused reader is read again on resume, by itself).
   */
  private applyInterest(): void {
    const state = this.state;
    if (state === State.Closed || this.fd < 0) return;
    let wanted = 0;
    if (this.edgeTriggered) {
      wanted = EVENT_READ | EVENT_WRITE | (this.shortReads ? EVENT_CONDITION : 0);
    } else if (state === State.Connecting) {
      wanted = EVENT_WRITE;
    } else {
      if (state === State.Lingering || (deliversData(state) && !this.paused)) wanted |= EVENT_READ;
      if (!this.queue.isEmpty || flushingToShut(state)) wanted |= EVENT_WRITE;
    }
    if (wanted === this.interest) return;
    if (wanted === 0) this.reactor.remove(this.fd);
    else if (this.interest === 0) this.reactor.add(this.fd, wanted, this.handler);
    else this.reactor.modify(this.fd, wanted);
    this.interest = wanted;
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/** True for the errors a peer causes by going away: worth counting, not worth logging. */
export function isDisconnect(err: unknown): boolean {
  return isSystemError(err, 'ECONNRESET') || isSystemError(err, 'EPIPE') || isSystemError(err, 'ETIMEDOUT');
}
