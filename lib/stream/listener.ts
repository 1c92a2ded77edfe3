/**
 * A listening stream socket on a reactor that turns each accepted descriptor into a Connection.
 *
 * - Accepts until EAGAIN on every wake-up, level- or edge-triggered: under edge-triggered epoll a
 *   connection left in the backlog would be stranded.
 * - An error that belongs to one connection (ECONNABORTED, EPROTO, EPERM, ENOBUFS, ... — accept(2)
 *   says Linux passes pending network errors of the new socket to accept) and a failing
 *   per-connection setsockopt are logged and the loop goes on, as libuv does.
 * - Out of descriptors (EMFILE, ENFILE): a level-triggered listener would report the same waiting
 *   connection forever, so accepting pauses for `acceptPauseMs`; close() cancels the pause.
 * - A descriptor the reactor cannot watch (select: fd >= FD_SETSIZE) is closed and counted as refused.
 *
 * - It tracks its connections (`connections`, `connectionCount`) until each one closes (its onClose
 *   already sees it gone; the set never changes inside a call of yours, only in the reactor's turn);
 *   `maxConnections` refuses (closes at once, counted) what would go past it; `shutdown(graceMs,
 *   done)` stops accepting, closes every connection gracefully, destroys what is left after the
 *   grace, and calls `done` once all are closed.
 *
 * Several threads can serve one port: one listener per thread with `reusePort` (the kernel spreads
 * connections), or one listening descriptor adopted by every thread's listener with `fd` and
 * `shared` (and `exclusive` on epoll, so that a connection wakes one thread, not all). With
 * `onDescriptor` the accepted descriptors are handed out as numbers instead of Connections — how a
 * ThreadingServer passes them to worker threads.
 */
import * as fs from 'node:fs';
import { isSystemError } from '../errors';
import { binding, constants, SocketAddress } from '../native';
import { Reactor } from '../reactor';
import { EVENT_READ } from '../selectors/selector';
import { Timer } from '../timer-queue';
import { Connection, ConnectionOptions, stderrLog } from './connection';
import { bindTo, Endpoint, isUnix, resolvedEndpoint, streamSocket, withAddress } from './endpoint';

export interface ListenerOptions {
  /** Where to listen: { host, port } (numeric or 'localhost'; default 127.0.0.1, port 0 picks a free one) or { path }. */
  endpoint?: Endpoint;
  /** Adopt this already listening, non-blocking descriptor instead of opening one (it becomes ours unless `shared`). */
  fd?: number;
  /**
   * With `fd`: the descriptor is shared with other listeners (one per thread), so close() stops
   * watching it and leaves it open: its owner closes it once every listener on it is closed.
   */
  shared?: boolean;
  /**
   * Register the listening descriptor with EPOLLEXCLUSIVE (epoll only; other mechanisms refuse it):
   * of the threads sharing it, a connection wakes one (or a few) instead of all.
   */
  exclusive?: boolean;
  /**
   * Hand each accepted descriptor out as a number, with the peer's address, instead of making a
   * Connection: it is then the callee's to close (a blocking handler on another thread, say). It
   * arrives non-blocking, with TCP_NODELAY as `noDelay` says. If it throws, the descriptor is closed.
   */
  onDescriptor?: (fd: number, peer: SocketAddress) => void;
  backlog?: number;
  /** SO_REUSEPORT (Linux): several listeners on one port, the kernel spreads connections. */
  reusePort?: boolean;
  /** TCP_NODELAY on every accepted TCP connection. Default true. */
  noDelay?: boolean;
  /** How long to stop accepting when out of descriptors. Default 100 ms. */
  acceptPauseMs?: number;
  /** Options of every accepted connection (their `log` defaults to the listener's). */
  connection?: ConnectionOptions;
  /**
   * Refuse (close at once, counted in stats.refused and stats.overLimit) a connection that would
   * make more than this many open at once. Default: no limit.
   */
  maxConnections?: number;
  /** Where notable events (refusals, accept errors, callbacks that threw) are reported. Default: standard error. */
  log?: (line: string) => void;
}

export interface ListenerStats {
  accepted: number;
  /** Accepted, then closed at once: the reactor could not watch it (select's FD_SETSIZE), or maxConnections. */
  refused: number;
  /** Of those refused: over maxConnections. */
  overLimit: number;
  /** accept() failures: per-connection errors skipped, and EMFILE/ENFILE pauses. */
  acceptErrors: number;
  /** Times accepting paused for lack of descriptors. */
  pauses: number;
}

/** Errors accept(2) reports for one pending connection, not for the listener: skip it and go on. */
const PER_CONNECTION_ERRORS = new Set([
  'ECONNABORTED', 'EPROTO', 'EPERM', 'ENOBUFS', 'ENOMEM', 'ENETDOWN', 'ENOPROTOOPT', 'EHOSTDOWN', 'ENONET',
  'EHOSTUNREACH', 'EOPNOTSUPP', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT',
]);

/** What the accept loop does after `err`: skip that connection, pause accepting, or both. */
export function acceptErrorAction(err: unknown): 'skip' | 'pause' {
  if (isSystemError(err) && PER_CONNECTION_ERRORS.has(err.code)) return 'skip';
  // EMFILE/ENFILE, and anything unknown (it would most likely repeat at once): wait, then retry.
  return 'pause';
}

/** A bound of skipped errors per wake-up, so that a kernel that keeps failing cannot spin the loop. */
const MAX_SKIPS_PER_WAKEUP = 64;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export class Listener<T = any> {
  readonly stats: ListenerStats = { accepted: 0, refused: 0, overLimit: 0, acceptErrors: 0, pauses: 0 };
  private fd = -1;
  private boundAddress: SocketAddress | null = null;
  private pauseTimer: Timer | null = null;
  private registered = false;
  private readonly log: (line: string) => void;
  private readonly onReadable = (): void => this.acceptAll();
  private readonly tracked = new Set<Connection<T>>();
  private readonly forget = (conn: Connection<T>): void => this.forgetConnection(conn);
  private readonly connectionOptions: ConnectionOptions;
  private readonly maxConnections: number;
  private shutdownDone: (() => void) | null = null;
  private graceTimer: Timer | null = null;

  constructor(
    readonly reactor: Reactor,
    private readonly options: ListenerOptions,
    /**
     * Called with each new connection: set its callbacks here (no event reaches it before). With
     * `onDescriptor`, accepted descriptors go there instead, and this serves adopt()ed ones.
     */
    private readonly onConnection?: (conn: Connection<T>) => void,
  ) {
    if (onConnection === undefined && options.onDescriptor === undefined) {
      throw new TypeError('A Listener needs an onConnection callback, or options.onDescriptor');
    }
    if (options.shared && options.fd === undefined) throw new TypeError('options.shared needs options.fd: the descriptor shared');
    const max = options.maxConnections ?? Infinity;
    if (!(max >= 0) || (max !== Infinity && !Number.isInteger(max))) throw new RangeError(`maxConnections must be an integer >= 0; got ${max}`);
    this.maxConnections = max;
    this.log = options.log ?? stderrLog;
    const connection = options.connection ?? {};
    this.connectionOptions = connection.log !== undefined ? connection : { ...connection, log: this.log };
  }

  /**
   * The connections this listener made (and adopted) that are not yet closed. One leaves the set
   * from the reactor's turn, just before its onClose runs — never inside a call of yours, so a loop
   * over it that writes, ends or destroys sees the set unchanged.
   */
  get connections(): ReadonlySet<Connection<T>> {
    return this.tracked;
  }

  get connectionCount(): number {
    return this.tracked.size;
  }

  /**
   * Stops accepting, closes every connection gracefully (Connection.close: flush, half-close,
   * discard until the peer's end; a connection carrying TLS closes through its TlsConnection, which
   * sends close_notify first), destroys those still open after `graceMs`, and calls `done`
   * once every one has closed (its onClose has run) — from the reactor's turn, also when there
   * was none. `graceMs` Infinity never destroys (a peer that never finishes then lingers for the
   * connection's lingerMs). Calling it again shortens nothing and replaces `done`.
   */
  shutdown(graceMs: number, done?: () => void): void {
    if (!(graceMs >= 0)) throw new RangeError(`graceMs must be a number of ms >= 0 (Infinity: never destroy); got ${graceMs}`);
    if (done !== undefined && typeof done !== 'function') throw new TypeError('done must be a function');
    this.close();
    this.shutdownDone = done ?? (() => undefined);
    for (const conn of this.tracked) (conn.layer ?? conn).close(); // A TLS connection sends close_notify first.
    if (this.graceTimer === null && this.tracked.size > 0 && graceMs !== Infinity) {
      this.graceTimer = this.reactor.setTimeout(() => {
        this.graceTimer = null;
        for (const conn of this.tracked) conn.destroy();
      }, graceMs);
    }
    if (this.tracked.size === 0) this.reactor.defer(() => this.checkShutDown());
  }

  /** Binds, listens and starts accepting; returns the bound address (the real port for port 0). */
  listen(): SocketAddress {
    if (this.fd >= 0) throw new Error('This listener is already listening');
    const endpoint = resolvedEndpoint(this.options.endpoint ?? {});
    const fd = this.options.fd ?? streamSocket(endpoint);
    try {
      if (this.options.fd === undefined) {
        if (!isUnix(endpoint)) {
          // Rebind at once over TIME_WAIT. Not on Windows, where SO_REUSEADDR lets another socket
          // steal a port in use.
          if (binding.platform !== 'win32') binding.setsockopt(fd, constants.SOL_SOCKET, constants.SO_REUSEADDR, true);
          if (this.options.reusePort) {
            if (constants.SO_REUSEPORT === undefined) throw new Error('SO_REUSEPORT is not available on this platform');
            binding.setsockopt(fd, constants.SOL_SOCKET, constants.SO_REUSEPORT, true);
          }
        }
        bindTo(fd, endpoint);
        try {
          binding.listen(fd, this.options.backlog ?? 511);
        } catch (err) {
          throw withAddress(err, endpoint);
        }
      }
      this.watch(fd);
    } catch (err) {
      if (!this.options.shared) binding.close(fd);
      throw err;
    }
    this.fd = fd;
    this.boundAddress = binding.getsockname(fd);
    return this.boundAddress;
  }

  get address(): SocketAddress | null {
    return this.boundAddress;
  }

  /** Whether it is accepting (listen() was called, close() or shutdown() not). */
  get listening(): boolean {
    return this.fd >= 0;
  }

  /** The listening descriptor (-1 when closed). */
  get descriptor(): number {
    return this.fd;
  }

  /**
   * Stops accepting and closes the listening socket (and its Unix path); connections go on. A
   * `shared` descriptor is only unwatched: it stays open for its owner. Idempotent.
   */
  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    if (this.pauseTimer !== null) this.reactor.clearTimer(this.pauseTimer);
    this.pauseTimer = null;
    if (this.registered && !this.reactor.selector.closed) this.reactor.remove(fd);
    this.registered = false;
    if (this.options.shared) return;
    binding.close(fd);
    const endpoint = this.options.endpoint;
    if (endpoint !== undefined && isUnix(endpoint) && this.options.fd === undefined) fs.rmSync(endpoint.path, { force: true });
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private acceptAll(): void {
    let skips = 0;
    while (this.fd >= 0) {
      let fd: number;
      let peer: SocketAddress | null = null;
      try {
        if (this.options.onDescriptor === undefined) {
          fd = binding.accept(this.fd);
        } else {
          const accepted = binding.acceptWithAddress(this.fd);
          fd = accepted === null ? -1 : accepted.fd;
          peer = accepted === null ? null : accepted.peer;
        }
      } catch (err) {
        this.stats.acceptErrors++;
        if (acceptErrorAction(err) === 'skip' && ++skips < MAX_SKIPS_PER_WAKEUP) {
          this.log(`accept: ${(err as Error).message}; skipping that connection`);
          continue;
        }
        this.pause(err);
        return;
      }
      if (fd === -1) return;
      if (peer === null) this.admit(fd);
      else this.handOut(fd, peer);
    }
  }

  /** onDescriptor's path: the number leaves this thread's care; only a failed hand-off is closed here. */
  private handOut(fd: number, peer: SocketAddress): void {
    this.stats.accepted++;
    if (this.options.noDelay !== false && peer.family !== 'unix') {
      try {
        binding.setsockopt(fd, constants.IPPROTO_TCP, constants.TCP_NODELAY, true);
      } catch (err) {
        this.log(`fd ${fd}: setsockopt(TCP_NODELAY): ${(err as Error).message}`);
      }
    }
    try {
      this.options.onDescriptor!(fd, peer);
    } catch (err) {
      this.log(`fd ${fd}: the descriptor handler threw: ${(err as Error).message}`);
      binding.close(fd);
    }
  }

  /**
   * Serves a connection accepted elsewhere (another thread's listener handed its descriptor over):
   * it becomes a tracked Connection of this listener, handed to onConnection. Returns null, with the
   * descriptor closed and the refusal counted and logged, when it cannot be served (maxConnections,
   * or a reactor that cannot watch it).
   */
  adopt(fd: number): Connection<T> | null {
    if (this.onConnection === undefined) throw new TypeError('adopt() needs the onConnection callback');
    return this.admit(fd);
  }

  private admit(fd: number): Connection<T> | null {
    if (this.tracked.size >= this.maxConnections) {
      binding.close(fd);
      this.stats.refused++;
      this.stats.overLimit++;
      this.log(`refused fd ${fd}: ${this.maxConnections} connections open (maxConnections)`);
      return null;
    }
    let conn: Connection<T>;
    try {
      conn = new Connection<T>(this.reactor, fd, this.connectionOptions);
    } catch (err) {
      // Most likely select() and fd >= FD_SETSIZE: refuse it cleanly, keep serving the others.
      binding.close(fd);
      this.stats.refused++;
      this.log(`refused fd ${fd}: ${(err as Error).message}`);
      return null;
    }
    this.stats.accepted++;
    this.tracked.add(conn);
    conn.untrack = this.forget;
    if (this.options.noDelay !== false && !isUnix(this.options.endpoint ?? {})) {
      try {
        conn.setNoDelay(true);
      } catch (err) {
        // The connection may already be gone (reset in the backlog): its own reads will say so.
        this.log(`fd ${fd}: setsockopt(TCP_NODELAY): ${(err as Error).message}`);
      }
    }
    try {
      this.onConnection!(conn);
    } catch (err) {
      // The application's setup failed for this connection alone.
      this.log(`fd ${fd}: the connection handler threw: ${(err as Error).message}`);
      conn.destroy(err instanceof Error ? err : new Error(String(err)));
    }
    return conn;
  }

  private forgetConnection(conn: Connection<T>): void {
    this.tracked.delete(conn);
    // After the connection's onClose, which runs right after this.
    if (this.shutdownDone !== null && this.tracked.size === 0) this.reactor.defer(() => this.checkShutDown());
  }

  private checkShutDown(): void {
    if (this.shutdownDone === null || this.tracked.size > 0) return;
    const done = this.shutdownDone;
    this.shutdownDone = null;
    if (this.graceTimer !== null) this.reactor.clearTimer(this.graceTimer);
    this.graceTimer = null;
    done();
  }

  /** Stop watching the listener for a while: a level-triggered one would report the same backlog forever. */
  private pause(err: unknown): void {
    const ms = this.options.acceptPauseMs ?? 100;
    this.stats.pauses++;
    this.log(`accept: ${(err as Error).message}; pausing accepts for ${ms} ms`);
    if (this.registered) this.reactor.remove(this.fd);
    this.registered = false;
    this.pauseTimer = this.reactor.setTimeout(() => {
      this.pauseTimer = null;
      if (this.fd < 0) return;
      this.watch(this.fd);
    }, ms);
  }

  private watch(fd: number): void {
    this.reactor.add(fd, EVENT_READ, this.onReadable, this.options.exclusive ? { exclusive: true } : undefined);
    this.registered = true;
  }
}
