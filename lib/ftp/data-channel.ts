/**
 * FTP data connections: passive (PASV/EPSV: we listen, the client connects) and active (PORT/EPRT:
 * we connect), on the same reactor as everything else.
 *
 * - A passive listener takes one connection, and only from the control connection's peer address:
 *   a connection from any other address is closed and counted (a stranger cannot steal the data).
 * - Passive ports come from a configured range (tried from a rotating start, a port in use is
 *   skipped) or, without one, from the kernel.
 * - An active connection goes only to the control connection's peer: PORT/EPRT to any other
 *   address (FTP bounce, RFC 2577) or to a privileged port is refused before we get here.
 * - A data connection that does not come within `timeoutMs` — counted from PASV/PORT, and again
 *   from the transfer command — fails the transfer with 425.
 */
import { isSystemError } from '../errors';
import { Reactor } from '../reactor';
import { Connection, ConnectionOptions } from '../stream/connection';
import { Listener } from '../stream/listener';
import { Timer } from '../timer-queue';
import { normalizeAddress } from './protocol';
import type { DataConnection } from './tls';

export interface DataFailure {
  code: number;
  text: string;
}

export interface DataChannelOptions {
  reactor: Reactor;
  /** How long the data connection may take to come. */
  timeoutMs: number;
  /** Options of the data connection (its idle timeout and linger). */
  connection: ConnectionOptions;
  log: (line: string) => void;
  /**
   * FTPS (PROT P): puts each data connection into TLS as soon as it is there; `done` with the
   * secure connection, or with null and the reply that refuses the transfer (lib/ftp/tls.ts).
   */
  secure?: (conn: Connection, done: (conn: DataConnection | null, failure?: DataFailure) => void) => void;
  /** The data connection came (isConnected), or the channel closed: the session pauses its idle timer meanwhile. */
  onChange?: () => void;
}

/** Hands out passive listening ports from a range (or from the kernel, with no range). */
export class PassivePorts {
  private cursor = 0;
  /** Connections to a passive port from an address other than the control connection's. */
  refusedPeers = 0;

  constructor(readonly range: readonly [number, number] | null) {
    if (range !== null && !(Number.isInteger(range[0]) && Number.isInteger(range[1]) && range[0] >= 1 && range[0] <= range[1] && range[1] <= 65535)) {
      throw new RangeError(`A passive port range is two ports A-B with 1 <= A <= B <= 65535; got ${range.join('-')}`);
    }
  }

  /** A listening Listener on `host`, on a free port of the range. Throws (code 'EADDRINUSE') when every port is taken. */
  listen(reactor: Reactor, host: string, options: ConnectionOptions, log: (line: string) => void,
    onConnection: (conn: Connection) => void): Listener {
    const make = (port: number) => new Listener(reactor, { endpoint: { host, port }, backlog: 4, connection: options, log }, onConnection);
    if (this.range === null) {
      const listener = make(0);
      listener.listen();
      return listener;
    }
    const [low, high] = this.range;
    const span = high - low + 1;
    for (let i = 0; i < span; i++) {
      const port = low + ((this.cursor + i) % span);
      const listener = make(port);
      try {
        listener.listen();
      } catch (err) {
        if (isSystemError(err, 'EADDRINUSE')) continue;
        throw err;
      }
      this.cursor = (this.cursor + i + 1) % span;
      return listener;
    }
    const err = new Error(`every passive port from ${low} to ${high} is in use`) as Error & { code: string };
    err.code = 'EADDRINUSE';
    throw err;
  }
}

export class DataChannel {
  /** The connection, once it came and until a transfer takes it. */
  private conn: DataConnection | null = null;
  /** Its TLS handshake is running (FTPS): the transfer waits for it. */
  private securing = false;
  /** Why the connection that came cannot be used (its TLS failed), for the transfer command. */
  private refusal: DataFailure | null = null;
  private listener: Listener | null = null;
  private timer: Timer | null = null;
  private ready: ((conn: DataConnection) => void) | null = null;
  private failed: ((failure: DataFailure) => void) | null = null;
  private closed = false;
  private expired = false;

  private constructor(private readonly options: DataChannelOptions,
    /** Active mode: where to connect when the transfer starts. */
    private readonly target: { host: string; port: number } | null) {
    this.restartTimer();
  }

  /** Listens for the data connection on `localHost` (the control connection's local address), from `peerHost` only. */
  static passive(options: DataChannelOptions, ports: PassivePorts, localHost: string, peerHost: string): DataChannel {
    const channel = new DataChannel(options, null);
    const peer = normalizeAddress(peerHost);
    try {
      channel.listener = ports.listen(options.reactor, localHost, options.connection, options.log, (conn) => {
        const from = normalizeAddress(conn.remoteAddress.address);
        if (from !== peer || channel.closed || channel.conn !== null) {
          ports.refusedPeers++;
          options.log(`data connection from ${from} refused: the control connection is from ${peer}`);
          conn.destroy();
          return;
        }
        channel.accepted(conn);
      });
    } catch (err) {
      channel.close();
      throw err;
    }
    return channel;
  }

  /** Connects to `host`:`port` when the transfer starts (the caller checked it is the control connection's peer). */
  static active(options: DataChannelOptions, host: string, port: number): DataChannel {
    return new DataChannel(options, { host, port });
  }

  /** The passive listener's port (0 in active mode). */
  get port(): number {
    return this.listener?.address?.port ?? 0;
  }

  get isPassive(): boolean {
    return this.target === null;
  }

  /** A data connection is here, waiting for its transfer command. */
  get isConnected(): boolean {
    return this.conn !== null && !this.closed;
  }

  /**
   * The transfer command is here: `ready(conn)` once the data connection is established (the
   * connection is then the caller's), or `failed` with the reply that says why not. Exactly one of
   * them runs, maybe before this returns.
   */
  open(ready: (conn: DataConnection) => void, failed: (failure: DataFailure) => void): void {
    if (this.refusal !== null) {
      const refusal = this.refusal;
      this.close();
      failed(refusal);
      return;
    }
    if (this.closed) {
      failed({ code: 425, text: this.expired ? 'Can\'t open data connection: it did not come in time; send PASV or PORT again.'
        : 'Can\'t open data connection.' });
      return;
    }
    this.ready = ready;
    this.failed = failed;
    this.restartTimer();
    if (this.target !== null) this.connect(this.target);
    else if (this.conn !== null && !this.securing) this.handOver();
  }

  /** Closes the listener and any connection not handed over yet. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) this.options.reactor.clearTimer(this.timer);
    this.timer = null;
    this.listener?.close();
    this.listener = null;
    const conn = this.conn;
    this.conn = null;
    conn?.destroy();
    this.options.onChange?.();
  }

  private accepted(conn: Connection): void {
    this.conn = conn;
    conn.pause(); // Nothing is read before the transfer says what to do.
    this.listener?.close();
    this.listener = null;
    this.options.onChange?.();
    if (this.options.secure !== undefined) this.secure(conn);
    else if (this.ready !== null) this.handOver();
  }

  /** FTPS: the handshake starts now (a client may speak TLS before its transfer command); the transfer waits for it. */
  private secure(conn: Connection): void {
    this.securing = true;
    this.options.secure!(conn, (secured, failure) => {
      this.securing = false;
      if (this.closed) {
        secured?.destroy();
        return;
      }
      if (secured === null) {
        this.conn = null;
        this.options.onChange?.(); // No data connection after all: the idle timer runs again.
        if (this.failed !== null) this.fail(failure!.text, failure!.code);
        else this.refusal = failure!;
        return;
      }
      this.conn = secured;
      secured.pause();
      if (this.ready !== null) this.handOver();
    });
  }

  private connect(target: { host: string; port: number }): void {
    let conn: Connection;
    try {
      conn = Connection.connect(this.options.reactor, target, { ...this.options.connection, timeoutMs: this.options.timeoutMs });
    } catch (err) {
      this.fail(`Can't open data connection: ${(err as Error).message}.`);
      return;
    }
    this.conn = conn;
    conn.pause();
    conn.onConnect = () => {
      if (this.options.secure !== undefined) this.secure(conn);
      else this.handOver();
    };
    conn.onError = (err) => {
      this.conn = null;
      this.fail(`Can't open data connection to ${target.host} port ${target.port}: ${(err as { code?: string }).code ?? err.message}.`);
    };
  }

  private handOver(): void {
    const conn = this.conn!;
    const ready = this.ready!;
    this.conn = null;
    this.ready = this.failed = null;
    if (conn instanceof Connection) conn.onConnect = null;
    conn.onError = null;
    this.close();
    ready(conn);
  }

  private fail(text: string, code = 425): void {
    const failed = this.failed;
    this.ready = this.failed = null;
    this.close();
    failed?.({ code, text });
  }

  private restartTimer(): void {
    const { reactor, timeoutMs } = this.options;
    if (this.timer !== null) reactor.clearTimer(this.timer);
    this.timer = reactor.setTimeout(() => {
      this.timer = null;
      this.expired = true;
      this.fail(`Can't open data connection: none came within ${timeoutMs / 1000} s.`);
    }, timeoutMs);
  }
}
