/**
 * The multiplexed echo server (RFC 862 by default): a few dozen lines of policy on the stream
 * layer, which does the rest (accepting, queues, gathered writes, backpressure, half-close, the
 * lingering close, edge-triggered drain loops).
 *
 * The policy: what a connection receives is written back (with the suffix, if any, in the same
 * gathered write); a write that reaches the high-water mark pauses reading until the queue drains;
 * the peer's end of stream ends ours once the queue is out. 'queued' writes keep the seed's strict
 * read/write separation: every reply waits for a writable event.
 */
import { SocketAddress } from '../native';
import { Reactor } from '../reactor';
import { availableMechanisms, createSelector, MechanismName } from '../selectors/default';
import { Connection, ConnectionOptions, isDisconnect, WriteStrategy } from '../stream/connection';
import { Listener } from '../stream/listener';
import type { ConnectionBalancer } from './connection-balancer';

export type { WriteStrategy };

export interface EchoServerOptions {
  /** Which mechanism to build a reactor on (ignored when `reactor` is given). Default: the best here. */
  mechanism?: MechanismName;
  /** Edge-triggered epoll (EPOLLET). */
  edge?: boolean;
  /**
   * Level-triggered epoll: apply interest changes just before the next wait (default true), so a
   * change undone within a turn costs nothing. Ignored when `reactor` is given.
   */
  batchInterest?: boolean;
  /** Serve on an existing reactor (to embed next to other handlers). */
  reactor?: Reactor;
  host?: string;
  port?: number;
  /** Listen on a Unix socket path instead of TCP. */
  unixPath?: string;
  backlog?: number;
  /** SO_REUSEPORT: one server per thread on one port, each with its own listening socket; the kernel spreads connections. */
  reusePort?: boolean;
  /**
   * Serve from this listening descriptor, shared with the servers of other threads: it is never
   * closed here (its owner closes it once every server has stopped accepting).
   */
  sharedFd?: number;
  /** With sharedFd, on epoll: EPOLLEXCLUSIVE on the listener, so a connection wakes one thread, not all. */
  exclusive?: boolean;
  /**
   * With sharedFd: give each accepted connection to the thread with the fewest open connections
   * (this one, or another: see ConnectionBalancer); connections handed to this thread arrive by adopt().
   */
  balancer?: ConnectionBalancer;
  /**
   * 'direct' (default): send at once, queue and register write interest only for what would block.
   * 'queued': the seed's strict separation: every reply waits in the queue for a writable event
   * (two extra epoll_ctl calls per message: the benchmark prices it).
   */
  write?: WriteStrategy;
  /** Sent to each client on connect (the seed's demo). */
  greeting?: string | Uint8Array;
  /** Appended to every reply, one per received chunk, in the same segment (the seed's demo). */
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
  /** Connections this server took on: accepted by its listener (less those handed to another thread), and adopted. */
  accepted: number;
  /** Connections closed at once because they could not be served (select's FD_SETSIZE). */
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

function toBytes(value: string | Uint8Array | undefined): Buffer | null {
  if (value === undefined || value.length === 0) return null;
  return Buffer.from(value);
}

export class EchoServer {
  readonly reactor: Reactor;
  private readonly ownsReactor: boolean;
  private readonly listener: Listener;
  private readonly greeting: Buffer | null;
  private readonly suffix: Buffer | null;
  private readonly log: (line: string) => void;
  private readonly gone = { closed: 0, errors: 0, bytesOut: 0, maxQueued: 0 };
  private bytesIn = 0;
  private adopted = 0;
  private readonly balancer: ConnectionBalancer | null;
  private readonly connectionOptions: ConnectionOptions;

  constructor(options: EchoServerOptions = {}) {
    const edge = options.edge === true;
    const mechanism = options.mechanism ?? 'epoll';
    if (edge && options.reactor === undefined && mechanism !== 'epoll' && mechanism !== 'io_uring') {
      throw new RangeError('Edge-triggered mode needs epoll or io_uring');
    }
    this.ownsReactor = options.reactor === undefined;
    this.reactor = options.reactor ??
      new Reactor(createSelector(options.mechanism ?? availableMechanisms()[0], { edgeTriggered: edge, batchInterest: options.batchInterest !== false }));
    this.greeting = toBytes(options.greeting);
    this.suffix = toBytes(options.suffix);
    this.log = options.log ?? (() => undefined);
    const highWater = options.highWater ?? 1024 * 1024;
    this.connectionOptions = { highWater, lowWater: options.lowWater, readSize: options.readSize, write: options.write };
    const balancer = options.balancer ?? null;
    this.balancer = balancer;
    this.listener = new Listener(this.reactor, {
      endpoint: options.unixPath !== undefined ? { path: options.unixPath } : { host: options.host, port: options.port },
      backlog: options.backlog,
      reusePort: options.reusePort,
      fd: options.sharedFd,
      shared: options.sharedFd !== undefined,
      exclusive: options.exclusive,
      log: this.log,
      connection: this.connectionOptions,
      onDescriptor: balancer === null ? undefined : (fd) => {
        if (!balancer.place(fd)) this.adopt(fd);
      },
    }, (conn) => this.serve(conn));
  }

  /**
   * Serves a connection accepted elsewhere — by another thread's listener, which handed over its
   * descriptor. It is this server's from now on (it closes it).
   */
  adopt(fd: number): void {
    if (this.listener.adopt(fd) === null) this.balancer?.released(); // Refused: closed and logged by the listener.
    else this.adopted++;
  }

  /** Binds, listens and registers the listener; returns the bound address (the real port for port 0). */
  listen(): SocketAddress {
    return this.listener.listen();
  }

  get address(): SocketAddress | null {
    return this.listener.address;
  }

  get stats(): EchoStats {
    let bytesOut = this.gone.bytesOut;
    let maxQueued = this.gone.maxQueued;
    for (const conn of this.listener.connections) {
      bytesOut += conn.bytesWritten;
      maxQueued = Math.max(maxQueued, conn.peakWritableLength);
    }
    const accepted = this.balancer === null ? this.listener.stats.accepted : this.adopted;
    const refused = this.listener.stats.refused;
    const { wakeups, events } = this.reactor.stats;
    return {
      connections: this.listener.connectionCount, accepted, refused, closed: this.gone.closed, errors: this.gone.errors,
      bytesIn: this.bytesIn, bytesOut, maxQueued, wakeups, events,
    };
  }

  /** Stops accepting; established connections go on. */
  stopAccepting(): void {
    this.listener.close();
  }

  /**
   * Graceful stop: no new connections, no more replies read; every queue is flushed, then each
   * connection closes the lingering way (see Connection.close). `done` runs when the last one has
   * (at once if there are none). Bound it with a timer and close(): a peer that never finishes would
   * linger for the connection's lingerMs.
   */
  shutdown(done?: () => void): void {
    this.listener.shutdown(Infinity, done);
  }

  /** Closes the listener and every connection now, dropping queued bytes. */
  close(): void {
    this.stopAccepting();
    for (const conn of this.listener.connections) conn.destroy();
    if (this.ownsReactor) this.reactor.close();
  }

  private serve(conn: Connection): void {
    const { suffix } = this;
    conn.onData = (data) => {
      this.bytesIn += data.length;
      let room = conn.write(data);
      if (suffix !== null) room = conn.write(suffix);
      if (!room) conn.pause();
    };
    conn.onDrain = () => conn.resume();
    conn.onError = (err) => {
      this.gone.errors++;
      if (!isDisconnect(err)) this.log(`fd ${conn.fd}: ${err.message}`);
    };
    conn.onClose = () => {
      this.balancer?.released();
      this.gone.closed++;
      this.gone.bytesOut += conn.bytesWritten;
      this.gone.maxQueued = Math.max(this.gone.maxQueued, conn.peakWritableLength);
    };
    if (this.greeting !== null) conn.write(this.greeting);
  }
}
