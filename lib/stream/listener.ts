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
 */
import * as fs from 'node:fs';
import { isSystemError } from '../errors';
import { binding, constants, SocketAddress } from '../native';
import { Reactor } from '../reactor';
import { EVENT_READ } from '../selectors/selector';
import { Timer } from '../timer-queue';
import { Connection, ConnectionOptions } from './connection';
import { bindTo, Endpoint, isUnix, streamSocket } from './endpoint';

export interface ListenerOptions {
  /** Where to listen: { host, port } (default 127.0.0.1, port 0 picks a free one) or { path }. */
  endpoint?: Endpoint;
  /** Adopt this already listening, non-blocking descriptor instead of opening one (it becomes ours). */
  fd?: number;
  backlog?: number;
  /** SO_REUSEPORT (Linux): several listeners on one port, the kernel spreads connections. */
  reusePort?: boolean;
  /** TCP_NODELAY on every accepted TCP connection. Default true. */
  noDelay?: boolean;
  /** How long to stop accepting when out of descriptors. Default 100 ms. */
  acceptPauseMs?: number;
  /** Options of every accepted connection. */
  connection?: ConnectionOptions;
  /** Where notable events (refusals, accept errors) are reported. Default: nowhere. */
  log?: (line: string) => void;
}

export interface ListenerStats {
  accepted: number;
  /** Accepted, then closed at once: the reactor could not watch it (select's FD_SETSIZE). */
  refused: number;
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

export class Listener {
  readonly stats: ListenerStats = { accepted: 0, refused: 0, acceptErrors: 0, pauses: 0 };
  private fd = -1;
  private boundAddress: SocketAddress | null = null;
  private pauseTimer: Timer | null = null;
  private registered = false;
  private readonly log: (line: string) => void;
  private readonly onReadable = (): void => this.acceptAll();

  constructor(
    readonly reactor: Reactor,
    private readonly options: ListenerOptions,
    /** Called with each new connection: set its callbacks here (no event reaches it before). */
    private readonly onConnection: (conn: Connection) => void,
  ) {
    this.log = options.log ?? (() => undefined);
  }

  /** Binds, listens and starts accepting; returns the bound address (the real port for port 0). */
  listen(): SocketAddress {
    if (this.fd >= 0) throw new Error('This listener is already listening');
    const endpoint = this.options.endpoint ?? {};
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
        binding.listen(fd, this.options.backlog ?? 511);
      }
      this.reactor.add(fd, EVENT_READ, this.onReadable);
    } catch (err) {
      binding.close(fd);
      throw err;
    }
    this.fd = fd;
    this.registered = true;
    this.boundAddress = binding.getsockname(fd);
    return this.boundAddress;
  }

  get address(): SocketAddress | null {
    return this.boundAddress;
  }

  get listening(): boolean {
    return this.fd >= 0;
  }

  /** The listening descriptor (-1 when closed). */
  get descriptor(): number {
    return this.fd;
  }

  /** Stops accepting and closes the listening socket (and its Unix path); connections go on. Idempotent. */
  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    if (this.pauseTimer !== null) this.reactor.clearTimer(this.pauseTimer);
    this.pauseTimer = null;
    if (this.registered && !this.reactor.selector.closed) this.reactor.remove(fd);
    this.registered = false;
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
      try {
        fd = binding.accept(this.fd);
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
      this.admit(fd);
    }
  }

  private admit(fd: number): void {
    let conn: Connection;
    try {
      conn = new Connection(this.reactor, fd, this.options.connection);
    } catch (err) {
      // Most likely select() and fd >= FD_SETSIZE: refuse it cleanly, keep serving the others.
      binding.close(fd);
      this.stats.refused++;
      this.log(`refused fd ${fd}: ${(err as Error).message}`);
      return;
    }
    this.stats.accepted++;
    if (this.options.noDelay !== false && !isUnix(this.options.endpoint ?? {})) {
      try {
        conn.setNoDelay(true);
      } catch (err) {
        // The connection may already be gone (reset in the backlog): its own reads will say so.
        this.log(`fd ${fd}: setsockopt(TCP_NODELAY): ${(err as Error).message}`);
      }
    }
    try {
      this.onConnection(conn);
    } catch (err) {
      // The application's setup failed for this connection alone.
      this.log(`fd ${fd}: the connection handler threw: ${(err as Error).message}`);
      conn.destroy(err instanceof Error ? err : new Error(String(err)));
    }
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
      this.reactor.add(this.fd, EVENT_READ, this.onReadable);
      this.registered = true;
    }, ms);
  }
}
