/**
 * The read/write-separated multiplexed echo server (RFC 862 by default).
 *
 * Reads fill a per-connection queue; write interest is registered only while that queue is
 * non-empty ('queued', the seed's strict separation), or only for what a direct send could not
 * take ('direct'). Past the high-water mark a connection is not read until its queue drains
 * below the low-water mark, so a client that sends and never reads cannot grow memory without
 * bound. Under edge-triggered epoll, accept, read and write loop until EAGAIN.
 */
import * as fs from 'node:fs';
import { isSystemError } from '../errors';
import { binding, constants, SocketAddress } from '../native';
import { Reactor } from '../reactor';
import { availableMechanisms, createSelector, MechanismName } from '../selectors/default';
import { EVENT_READ, EVENT_WRITE } from '../selectors/selector';
import { Connection } from './connection';

export type WriteStrategy = 'queued' | 'direct';

export interface EchoServerOptions {
  /** Which mechanism to build a reactor on (ignored when `reactor` is given). Default: the best here. */
  mechanism?: MechanismName;
  /** Edge-triggered epoll (EPOLLET). */
  edge?: boolean;
  /** Serve on an existing reactor (to embed next to other handlers). */
  reactor?: Reactor;
  host?: string;
  port?: number;
  /** Listen on a Unix socket path instead of TCP. */
  unixPath?: string;
  backlog?: number;
  /**
   * 'direct' (default): send at once, queue and register write interest only for what would block.
   * 'queued': the seed's strict separation: every reply waits in the queue for a writable event
   * (two extra epoll_ctl calls per message: the benchmark prices it).
   */
  write?: WriteStrategy;
  /** Sent to each client on connect (the seed's demo). */
  greeting?: string | Uint8Array;
  /** Appended to every reply, one per received chunk (the seed's demo). */
  suffix?: string | Uint8Array;
  /** Stop reading a connection whose queue reaches this many bytes. Default 1 MiB. */
  highWater?: number;
  /** Resume reading when its queue drains to this many bytes. Default highWater / 4. */
  lowWater?: number;
  /** Bytes per recv. Default 64 KiB. */
  readSize?: number;
  /** Where notable events (refusals, errors) are reported. Default: nowhere. */
  log?: (line: string) => void;
}

export interface EchoStats {
  /** Open connections now. */
  connections: number;
  accepted: number;
  /** Connections closed at once because they could not be served (select's FD_SETSIZE, EMFILE). */
  refused: number;
  closed: number;
  /** Connections ended by an error (reset, broken pipe). */
  errors: number;
  bytesIn: number;
  bytesOut: number;
  /** The largest output queue any connection had, in bytes. */
  maxQueued: number;
  wakeups: number;
  events: number;
}

const WOULD_BLOCK = -1;
const ACCEPT_PAUSE_MS = 100;

function toBytes(value: string | Uint8Array | undefined): Buffer | null {
  if (value === undefined || value.length === 0) return null;
  return typeof value === 'string' ? Buffer.from(value) : Buffer.from(value);
}

export class EchoServer {
  readonly reactor: Reactor;
  private readonly ownsReactor: boolean;
  private readonly edge: boolean;
  private readonly direct: boolean;
  private readonly greeting: Buffer | null;
  private readonly suffix: Buffer | null;
  private readonly highWater: number;
  private readonly lowWater: number;
  private readonly readBuffer: Buffer;
  private readonly log: (line: string) => void;
  private readonly connections = new Map<number, Connection>();
  private readonly counters = { accepted: 0, refused: 0, closed: 0, errors: 0, bytesIn: 0, bytesOut: 0, maxQueued: 0 };
  private listenFd = -1;
  private boundAddress: SocketAddress | null = null;
  private onDrained: (() => void) | null = null;

  constructor(private readonly options: EchoServerOptions = {}) {
    this.ownsReactor = options.reactor === undefined;
    this.edge = options.edge === true;
    if (this.edge && options.reactor === undefined && (options.mechanism ?? 'epoll') !== 'epoll') {
      throw new RangeError('Edge-triggered mode needs epoll');
    }
    this.reactor = options.reactor ??
      new Reactor(createSelector(options.mechanism ?? availableMechanisms()[0], { edgeTriggered: this.edge }));
    this.direct = (options.write ?? 'direct') === 'direct';
    if (options.write !== undefined && options.write !== 'queued' && options.write !== 'direct') {
      throw new RangeError(`write must be 'queued' or 'direct'; got ${String(options.write)}`);
    }
    this.greeting = toBytes(options.greeting);
    this.suffix = toBytes(options.suffix);
    this.highWater = options.highWater ?? 1024 * 1024;
    this.lowWater = options.lowWater ?? Math.floor(this.highWater / 4);
    if (!(this.highWater > 0) || !(this.lowWater >= 0) || this.lowWater >= this.highWater) {
      throw new RangeError('Need 0 <= lowWater < highWater');
    }
    this.readBuffer = Buffer.allocUnsafe(options.readSize ?? 64 * 1024);
    this.log = options.log ?? (() => undefined);
  }

  /** Binds, listens and registers the listener; returns the bound address (the real port for port 0). */
  listen(): SocketAddress {
    if (this.listenFd >= 0) throw new Error('The echo server is already listening');
    const { unixPath } = this.options;
    const host = this.options.host ?? '127.0.0.1';
    const family = unixPath !== undefined ? constants.AF_UNIX : host.includes(':') ? constants.AF_INET6 : constants.AF_INET;
    const fd = binding.socket(family, constants.SOCK_STREAM | (constants.SOCK_NONBLOCK ?? 0));
    try {
      if (constants.SOCK_NONBLOCK === undefined) binding.setNonBlocking(fd, true);
      if (unixPath !== undefined) {
        binding.bind(fd, unixPath);
      } else {
        // Rebind at once over TIME_WAIT. Not on Windows, where SO_REUSEADDR lets another socket
        // steal a port in use.
        if (binding.platform !== 'win32') binding.setsockopt(fd, constants.SOL_SOCKET, constants.SO_REUSEADDR, true);
        binding.bind(fd, host, this.options.port ?? 0);
      }
      binding.listen(fd, this.options.backlog ?? 511);
      this.reactor.add(fd, EVENT_READ, () => this.acceptAll());
    } catch (err) {
      binding.close(fd);
      throw err;
    }
    this.listenFd = fd;
    this.boundAddress = binding.getsockname(fd);
    return this.boundAddress;
  }

  get address(): SocketAddress | null {
    return this.boundAddress;
  }

  get stats(): EchoStats {
    return { connections: this.connections.size, ...this.counters, wakeups: this.reactor.stats.wakeups, events: this.reactor.stats.events };
  }

  /** Stops accepting; established connections go on. */
  stopAccepting(): void {
    if (this.listenFd < 0) return;
    const fd = this.listenFd;
    this.listenFd = -1;
    if (this.reactor.has(fd)) this.reactor.remove(fd);
    binding.close(fd);
    if (this.options.unixPath !== undefined) fs.rmSync(this.options.unixPath, { force: true });
  }

  /**
   * Graceful stop: no new connections, no more replies read; every queue is flushed, then our side
   * half-closes and input is discarded until the peer's end of stream (a lingering close: closing
   * with unread input would send a reset that destroys replies still in flight), then each
   * connection closes. `done` runs when the last one has (at once if there are none). Bound it
   * with a timer and close(): a peer that never finishes would linger forever.
   */
  shutdown(done?: () => void): void {
    this.stopAccepting();
    this.onDrained = done ?? null;
    for (const conn of [...this.connections.values()]) {
      conn.finishing = true;
      if (conn.queued === 0) this.finish(conn);
      else this.updateInterest(conn);
    }
    this.checkDrained();
  }

  /** Closes the listener and every connection now, dropping queued bytes. */
  close(): void {
    this.stopAccepting();
    for (const conn of [...this.connections.values()]) this.closeConnection(conn);
    if (this.ownsReactor) this.reactor.close();
  }

  private acceptAll(): void {
    // Both modes drain the backlog: under edge-triggered epoll anything left would be stranded.
    while (this.listenFd >= 0) {
      let fd: number;
      try {
        fd = binding.accept(this.listenFd);
      } catch (err) {
        if (isSystemError(err, 'EMFILE') || isSystemError(err, 'ENFILE')) {
          this.counters.refused++;
          this.log(`accept: ${(err as Error).message}; pausing accepts for ${ACCEPT_PAUSE_MS} ms`);
          this.pauseAccepting();
          return;
        }
        this.log(`accept: ${(err as Error).message}`);
        return;
      }
      if (fd === WOULD_BLOCK) return;
      this.admit(fd);
    }
  }

  /** Out of descriptors: a level-triggered listener would spin, so stop watching it for a while. */
  private pauseAccepting(): void {
    const fd = this.listenFd;
    this.reactor.remove(fd);
    this.reactor.setTimeout(() => {
      if (this.listenFd === fd) this.reactor.add(fd, EVENT_READ, () => this.acceptAll());
    }, ACCEPT_PAUSE_MS);
  }

  private admit(fd: number): void {
    const conn = new Connection(fd);
    conn.handler = (events) => this.onEvent(conn, events);
    try {
      this.reactor.add(fd, EVENT_READ, conn.handler);
    } catch (err) {
      // select() cannot watch this descriptor (FD_SETSIZE): refuse it cleanly.
      binding.close(fd);
      this.counters.refused++;
      this.log(`refused fd ${fd}: ${(err as Error).message}`);
      return;
    }
    this.counters.accepted++;
    this.connections.set(fd, conn);
    if (this.options.unixPath === undefined) {
      binding.setsockopt(fd, constants.IPPROTO_TCP, constants.TCP_NODELAY, true);
    }
    if (this.greeting) this.reply(conn, this.greeting, 0, this.greeting.length);
    if (!conn.closed) this.updateInterest(conn);
  }

  private onEvent(conn: Connection, events: number): void {
    if (events & EVENT_READ) this.onReadable(conn);
    if (!conn.closed && events & EVENT_WRITE) this.onWritable(conn);
    if (!conn.closed) this.updateInterest(conn);
  }

  private onReadable(conn: Connection): void {
    const buffer = this.readBuffer;
    if (conn.lingering) {
      this.discardUntilEnd(conn);
      return;
    }
    while (conn.reading && !conn.finishing) {
      let n: number;
      try {
        n = binding.recv(conn.fd, buffer, 0, buffer.length);
      } catch (err) {
        this.fail(conn, err);
        return;
      }
      if (n === WOULD_BLOCK) return;
      if (n === 0) {
        // End of stream: send what is queued, then close.
        conn.finishing = true;
        conn.peerClosed = true;
        if (conn.queued === 0) this.closeConnection(conn);
        return;
      }
      this.counters.bytesIn += n;
      this.reply(conn, buffer, 0, n);
      if (conn.closed) return;
      if (this.suffix) this.reply(conn, this.suffix, 0, this.suffix.length);
      if (conn.closed) return;
      if (conn.queued >= this.highWater) conn.reading = false;
      // Level-triggered: one read per wake-up keeps connections fair; the next wait reports the rest.
      if (!this.edge) return;
    }
  }

  /** Queues bytes for `conn`; the direct strategy first tries to send them at once. */
  private reply(conn: Connection, bytes: Uint8Array, offset: number, length: number): void {
    if (this.direct && conn.queued === 0) {
      let sent: number;
      try {
        sent = binding.send(conn.fd, bytes, offset, length);
      } catch (err) {
        this.fail(conn, err);
        return;
      }
      if (sent > 0) {
        this.counters.bytesOut += sent;
        offset += sent;
        length -= sent;
      }
    }
    conn.enqueue(bytes, offset, length);
    if (conn.queued > this.counters.maxQueued) this.counters.maxQueued = conn.queued;
  }

  private onWritable(conn: Connection): void {
    while (conn.queued > 0) {
      let sent: number;
      try {
        sent = binding.send(conn.fd, conn.headChunk, conn.headOffset, conn.headChunk.length - conn.headOffset);
      } catch (err) {
        this.fail(conn, err);
        return;
      }
      if (sent === WOULD_BLOCK) break;
      this.counters.bytesOut += sent;
      conn.consume(sent);
    }
    if (conn.queued === 0 && conn.finishing) {
      this.finish(conn);
      return;
    }
    if (!conn.reading && conn.queued <= this.lowWater) conn.reading = true;
  }

  /** Everything queued has been sent: close now if the peer is done, else half-close and linger. */
  private finish(conn: Connection): void {
    if (conn.peerClosed) {
      this.closeConnection(conn);
      return;
    }
    try {
      binding.shutdown(conn.fd, constants.SHUT_WR);
    } catch (err) {
      this.fail(conn, err);
      return;
    }
    conn.lingering = true;
    this.updateInterest(conn);
    // The peer may already have finished; in edge-triggered mode no new event would say so.
    this.discardUntilEnd(conn);
  }

  /** Reads and drops input until the peer's end of stream, then closes. */
  private discardUntilEnd(conn: Connection): void {
    for (;;) {
      let n: number;
      try {
        n = binding.recv(conn.fd, this.readBuffer, 0, this.readBuffer.length);
      } catch (err) {
        this.fail(conn, err);
        return;
      }
      if (n === WOULD_BLOCK) return;
      if (n === 0) {
        this.closeConnection(conn);
        return;
      }
    }
  }

  private updateInterest(conn: Connection): void {
    const wanted = conn.wantedInterest();
    if (wanted === conn.interest) return;
    this.reactor.modify(conn.fd, wanted);
    conn.interest = wanted;
  }

  private fail(conn: Connection, err: unknown): void {
    this.counters.errors++;
    if (!isSystemError(err, 'ECONNRESET') && !isSystemError(err, 'EPIPE')) this.log(`fd ${conn.fd}: ${(err as Error).message}`);
    this.closeConnection(conn);
  }

  private closeConnection(conn: Connection): void {
    if (conn.closed) return;
    conn.release();
    this.connections.delete(conn.fd);
    if (this.reactor.has(conn.fd)) this.reactor.remove(conn.fd);
    binding.close(conn.fd);
    this.counters.closed++;
    this.checkDrained();
  }

  private checkDrained(): void {
    if (this.onDrained && this.connections.size === 0 && this.listenFd < 0) {
      const done = this.onDrained;
      this.onDrained = null;
      done();
    }
  }
}

