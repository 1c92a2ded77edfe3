/**
 * TLS on a Connection: the same calls and callbacks as a plain Connection, with plaintext on this
 * side and ciphertext on the Connection underneath (`transport`), which keeps doing what it does —
 * the write queue, backpressure, half-close, the lingering close, idle timeouts, on every mechanism,
 * blocking `run()` or attached. The TLS itself is Node's OpenSSL through the addon's memory BIOs
 * (native/tls.cc): received bytes are fed in and decrypted in one call per read; what we write is
 * encrypted at once, and its records go to the transport in one write per turn (or per uncork).
 *
 * - `TlsConnection.server(conn, { context })`: accept TLS on a connection, from its first byte or
 *   after a plaintext exchange (STARTTLS, FTP's AUTH TLS: what was written before still goes out
 *   in clear, first). `TlsConnection.connect(reactor, endpoint, { context })` and
 *   `TlsConnection.client(conn, …)` are the client side.
 * - The lifecycle contract is the plain Connection's (docs/streams.md, "Lifecycle"), with the same
 *   states (lifecycle.ts): `connecting` lasts until the handshake is complete; write(), end() and
 *   sendFile() once our side has ended return false and drop (counted in `droppedWrites`), never
 *   throw; no callback runs inside a call of yours (what this layer owes is delivered from the
 *   reactor's turn, before onClose at the latest); a callback that throws destroys this connection
 *   alone, and what no onError hears goes to the transport's `log` (default: stderr).
 * - Writes made before the handshake is complete wait, in order, and count against `highWater`.
 *   `onSecure` says when it is complete. A handshake has `handshakeTimeoutMs` in total (default
 *   30 s), however slowly its bytes trickle in. end() and close() made before it are remembered.
 * - `sendFile` cannot use the kernel's sendfile (the bytes must be encrypted): it reads and encrypts
 *   256 KiB at a time, as the transport drains, so a file never sits in memory.
 * - `end()` sends close_notify, then half-closes; the peer's close_notify is `onEnd`. A peer that
 *   closes TCP without close_notify after the handshake also ends the stream (most FTPS clients do
 *   that on data connections, and vsftpd accepts it by default); `truncated` says it happened.
 *   `close()` sends close_notify, then closes the transport the lingering way; so does a Listener's
 *   `shutdown()` (the transport's `layer` is this connection).
 */
import * as net from 'node:net';
import { systemError } from '../errors';
import { binding, constants, SocketAddress, TlsEngineBinding } from '../native';
import { Reactor } from '../reactor';
import { Timer } from '../timer-queue';
import {
  checkSendFileArguments, Connection, ConnectionError, ConnectOptions, IdleTimeoutOptions, POISON, writeAfterEnd,
} from './connection';
import { Endpoint, isUnix } from './endpoint';
import {
  acceptsWrites, afterClose, afterEnd, afterFlushed, afterPeerEnd, deliversData, flushingToShut, State, STATE_NAMES, StateName,
} from './lifecycle';
import { fingerprint256, normalizeFingerprint, TlsContext } from './tls-context';
import { FileTruncatedError } from './write-queue';

export interface TlsOptions {
  context: TlsContext;
  /** The whole handshake must be done within this (ms). Default 30 000. */
  handshakeTimeoutMs?: number;
  /** Server: only a session made under the same bytes (1–32) may be resumed here (FTPS binds data connections to their control connection with it). */
  sessionIdContext?: Uint8Array;
  /**
   * Server: TLS 1.3 session tickets to send after the handshake (default 2, OpenSSL's). 0 for a
   * connection whose peer may never read (an upload): unread, they turn its close into a reset.
   */
  tickets?: number;
  /** Client: the server's name — SNI, and the name (or numeric address) its certificate must carry. Default: the endpoint's host. */
  servername?: string;
  /** Client: resume this session (another connection's `session`). */
  session?: Uint8Array;
  /** Client: accept exactly the certificate with this SHA-256 fingerprint (use with a context made with `verify: false`). */
  fingerprint256?: string;
  /** write() returns false once this many plaintext bytes wait (before the handshake, behind a file). Default 64 KiB. */
  highWater?: number;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;
const DEFAULT_HIGH_WATER = 64 * 1024;
/** Plaintext read per sendFile step: the engine's pread size. */
const FILE_STEP = 256 * 1024;

// Per thread, as the read buffer is: decrypted bytes handed to onData (valid until it returns), and
// records on their way to the transport (which copies what it does not send at once).
const plainScratch = Buffer.allocUnsafe(256 * 1024);
let cipherScratch = Buffer.allocUnsafe(FILE_STEP + 64 * 1024);
/**
 * cipherScratch is lent to a corked transport (one connection's, inside its onData) until that
 * transport uncorks: every connection on the thread then makes its records in a buffer of its own.
 */
let cipherScratchLent = false;

class FileJob {
  constructor(readonly fd: number, public position: number, readonly end: number, readonly done: ((err: Error | null) => void) | null) {}
}

type Pending = Buffer | FileJob;

// `any` as the default, as Connection's: see there.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export class TlsConnection<T = any> {
  /** Yours: per-connection state of the protocol built on top. */
  data: T = undefined as T;
  /** The handshake is complete (and, for a client, the server's certificate or fingerprint checked). */
  onSecure: ((this: TlsConnection<T>) => void) | null = null;
  /** Plaintext arrived: a view of a shared buffer, valid until this returns. */
  onData: ((this: TlsConnection<T>, data: Buffer) => void) | null = null;
  /** The peer finished sending (close_notify, or TCP's end after the handshake). Default (null): end() ours too. */
  onEnd: ((this: TlsConnection<T>) => void) | null = null;
  /** Writes may go on after a write() returned false. */
  onDrain: ((this: TlsConnection<T>) => void) | null = null;
  /** After end()/close(): everything, close_notify included, is in the kernel and our side is shut. */
  onFinish: ((this: TlsConnection<T>) => void) | null = null;
  /** Idle for the idle timeout. Default (null): destroy with ETIMEDOUT. */
  onTimeout: ((this: TlsConnection<T>) => void) | null = null;
  /** Exactly once: the descriptor is closed. */
  onClose: ((this: TlsConnection<T>, err: ConnectionError | null) => void) | null = null;

  /** Plaintext bytes received and sent. */
  bytesRead = 0;
  bytesWritten = 0;
  /** The peer ended the stream without close_notify (a truncation TLS cannot tell from a clean end). */
  truncated = false;
  /** Writes (and ends, and sendFiles) dropped because our side had ended: a count to watch, not an error. */
  droppedWrites = 0;

  private engine: TlsEngineBinding | null;
  private readonly highWater: number;
  private readonly pin: string | null;
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private handshakeTimer: Timer | null = null;
  /** The lifecycle (lifecycle.ts): Connecting until the handshake is complete. Never Closed: the transport's closing is. */
  private state = State.Connecting;
  /** While Connecting: the state to enter once secure (end() or close() may come first). */
  private requested = State.Open;
  private paused = false;
  /** The engine may hold decrypted-to-be bytes that no read will announce (paused mid-delivery). */
  private held = false;
  /** The peer's TLS stream has ended (its close_notify, or TCP's end after the handshake). */
  private peerDone = false;
  private shutdownSent = false;
  private transportBlocked = false;
  private needDrain = false;
  private corks = 0;
  /** Delivering plaintext inside the transport's onData: records leave once, at its end. */
  private receiving = false;
  /**
   * Inside the transport's onData, which corks it: a chunk written then is only borrowed until it
   * returns, so the shared cipher buffer may be lent once; further records go in buffers of their own.
   */
  private scratchLent: boolean | null = null;
  /** Work queued for the reactor's turn: moving writes and files on; bytes held over a pause. */
  private pumpQueued = false;
  private resumeQueued = false;
  /** Callbacks owed from the reactor's turn (sendFile's done after the end): paid before onClose at the latest. */
  private owed: (() => void)[] = [];
  private errorCallback: ((this: TlsConnection<T>, err: ConnectionError) => void) | null = null;

  /** Accepts TLS on `transport` (just accepted, or after a plaintext exchange: STARTTLS). */
  static server<T = any>(transport: Connection, options: TlsOptions): TlsConnection<T> {
    if (!options.context.isServer) throw new TypeError('TlsConnection.server needs a server TlsContext (TlsContext.server)');
    return new TlsConnection<T>(transport, options, true);
  }

  /** Starts a client handshake on the established (or connecting) `transport`. */
  static client<T = any>(transport: Connection, options: TlsOptions): TlsConnection<T> {
    if (options.context.isServer) throw new TypeError('TlsConnection.client needs a client TlsContext (TlsContext.client)');
    const conn = new TlsConnection<T>(transport, options, false);
    if (transport.isConnecting) transport.onConnect = () => conn.startClient();
    else conn.startClient();
    return conn;
  }

  /** Connects to `endpoint` and starts TLS on it; onSecure says when it is ready (writes wait until then). */
  static connect<T = any>(reactor: Reactor, endpoint: Endpoint, options: TlsOptions & ConnectOptions): TlsConnection<T> {
    const host = isUnix(endpoint) ? undefined : endpoint.host ?? '127.0.0.1';
    return TlsConnection.client<T>(Connection.connect(reactor, endpoint, options), { ...options, servername: options.servername ?? host });
  }

  private constructor(readonly transport: Connection, options: TlsOptions, server: boolean) {
    if (transport.closed) throw new Error('TLS on a closed connection');
    this.highWater = options.highWater ?? DEFAULT_HIGH_WATER;
    this.pin = options.fingerprint256 === undefined ? null : normalizeFingerprint(options.fingerprint256);
    const name = options.servername;
    const ip = name !== undefined && net.isIP(name) !== 0;
    this.engine = new binding.TlsEngine!(options.context.native, server
      ? { sessionIdContext: options.sessionIdContext, tickets: options.tickets }
      : {
        servername: name !== undefined && !ip ? name : undefined,
        host: options.context.verify && name !== undefined && !ip ? name : undefined,
        ip: options.context.verify && ip ? name : undefined,
        session: options.session,
      });
    const timeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.handshakeTimer = transport.reactor.setTimeout(() => {
      this.handshakeTimer = null;
      this.transport.destroy(systemError(constants.errno.ETIMEDOUT, 'tls handshake', `(not complete within ${timeoutMs} ms)`));
    }, timeoutMs);
    transport.layer = this;
    transport.onData = (data) => this.received(data);
    transport.onEnd = () => this.transportEnded();
    transport.onDrain = () => this.transportDrained();
    transport.onFinish = () => this.finished();
    transport.onTimeout = () => this.timedOut();
    transport.onError = null; // Until ours is set: a callback's exception is then logged, as a plain connection's.
    transport.onClose = (err) => this.released(err);
    // The handshake is read whatever the application's pause says.
    if (transport.isPaused) transport.resume();
  }

  /**
   * At most once, before onClose: a TLS failure (code ERR_SSL_…, or a certificate check's), a reset,
   * a timeout, or a callback's exception. (The transport's own, passed on: with none set, an
   * exception no onError hears is logged, as on a plain connection.)
   */
  get onError(): ((this: TlsConnection<T>, err: ConnectionError) => void) | null {
    return this.errorCallback;
  }

  set onError(callback: ((this: TlsConnection<T>, err: ConnectionError) => void) | null) {
    this.errorCallback = callback;
    this.transport.onError = callback === null ? null : (err) => callback.call(this, err);
  }

  get reactor(): Reactor {
    return this.transport.reactor;
  }

  get fd(): number {
    return this.transport.fd;
  }

  get remoteAddress(): SocketAddress {
    return this.transport.remoteAddress;
  }

  get localAddress(): SocketAddress {
    return this.transport.localAddress;
  }

  /** Where the lifecycle is (docs/streams.md, "Lifecycle"): `connecting` until the handshake is complete. */
  get lifecycle(): StateName {
    return this.transport.closed ? 'closed' : STATE_NAMES[this.state];
  }

  /** write(), end() and sendFile() are accepted: our side has not ended (writes wait for the handshake). */
  get writable(): boolean {
    return !this.transport.closed && acceptsWrites(this.target);
  }

  /** close() was called, or both sides are finishing: the descriptor closes without more from you. */
  get closing(): boolean {
    const state = this.target;
    return !this.transport.closed && (state === State.Closing || state === State.Finishing || state === State.Lingering);
  }

  /** True once the descriptor is closed (onClose may still be on its way, from the reactor's turn). */
  get destroyed(): boolean {
    return this.transport.closed;
  }

  /** The same as `destroyed`. */
  get closed(): boolean {
    return this.transport.closed;
  }

  /** The TCP connect or the TLS handshake is still in progress (writes wait). */
  get isConnecting(): boolean {
    return !this.transport.closed && this.state === State.Connecting;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** The handshake is complete. */
  get isSecure(): boolean {
    return this.secure;
  }

  /** The handshake is complete: the state leaves Connecting then, for good (`requested` is never Connecting). */
  private get secure(): boolean {
    return this.state !== State.Connecting;
  }

  /** Bytes not yet in the kernel: plaintext waiting, plus records queued on the transport. */
  get writableLength(): number {
    return this.pendingBytes + this.transport.writableLength;
  }

  /** 'TLSv1.3', 'TLSv1.2' once secure; else null. */
  get protocol(): string | null {
    return this.engine?.protocol ?? null;
  }

  get cipher(): string | null {
    return this.engine?.cipher ?? null;
  }

  /** The handshake resumed an earlier session (no certificate exchange). */
  get sessionReused(): boolean {
    return this.engine?.sessionReused ?? false;
  }

  /** The peer's certificate (DER), or null. `new crypto.X509Certificate(der)` reads it. */
  get peerCertificate(): Buffer | null {
    return this.engine?.peerCertificate ?? null;
  }

  /** The session (DER), for `session` of a later connection to the same server. TLS 1.3 hands it over after the handshake, with the first bytes read. */
  get session(): Buffer | null {
    return this.engine?.session ?? null;
  }

  /**
   * Encrypts `chunk` and sends it (before the handshake is complete it waits). Returns false once
   * the transport's queue, or the plaintext waiting here, reached its high-water mark: wait for
   * onDrain. Once our side has ended (end(), close(), destroy(), a failure) the chunk is dropped
   * and false returned, never a throw, as on a plain Connection.
   */
  write(chunk: Uint8Array | string): boolean {
    if (!this.writable) return this.dropped('write');
    const owned = typeof chunk === 'string';
    const bytes = owned ? Buffer.from(chunk) : chunk;
    if (bytes.length > 0) {
      if (!this.secure || this.pending.length > 0) {
        this.pending.push(owned ? bytes as Buffer : Buffer.from(bytes));
        this.pendingBytes += bytes.length;
      } else {
        this.encrypt(bytes);
        if (this.transport.closed) return false;
      }
    }
    // While a read is being delivered the records wait in the engine: they count too.
    const waiting = this.receiving && this.engine !== null ? this.engine.pending + this.transport.writableLength : this.pendingBytes;
    if (this.transportBlocked || waiting >= this.highWater || this.pendingBytes >= this.highWater) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  /**
   * Queues `length` bytes of the open file `fd` from `offset`, after what was written before:
   * read and encrypted 256 KiB at a time as the transport drains. `done(err)` runs from the
   * reactor's turn once they are sent, or with the error that dropped them (the connection ended
   * first, or — then this returns false — our side had already ended: ERR_STREAM_WRITE_AFTER_END).
   * A file shorter than the range destroys the connection (ERR_FILE_TRUNCATED). The descriptor
   * stays yours. Bad arguments throw at the call, as Connection.sendFile's do.
   */
  sendFile(fd: number, offset: number, length: number, done?: (err: Error | null) => void): boolean {
    checkSendFileArguments(fd, offset, length, done);
    if (!this.writable) {
      if (done !== undefined) {
        const err = writeAfterEnd(this.lifecycle);
        this.owe(() => done(err));
      }
      return this.dropped('sendFile');
    }
    this.pending.push(new FileJob(fd, offset, offset + length, done ?? null));
    this.schedulePump(); // From the reactor's turn: done() never runs inside this call.
    return true;
  }

  /** Holds records until uncork(), so that several writes leave in one transport write. Nests. */
  cork(): void {
    this.corks++;
  }

  uncork(): void {
    if (this.corks === 0 || --this.corks > 0) return;
    this.sendRecords();
  }

  /** Stops delivering plaintext (and, once the handshake is complete, reading). */
  pause(): void {
    this.paused = true;
    if (this.secure) this.transport.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.transport.resume();
    if (this.held && !this.resumeQueued && !this.transport.closed) {
      // Bytes already in the engine get no read event of their own: deliver them from the turn.
      this.resumeQueued = true;
      this.reactor.defer(() => {
        this.resumeQueued = false;
        if (this.transport.closed) return;
        this.guarded('onData', () => {
          this.deliver();
          this.sendRecords();
        });
      });
    }
  }

  /**
   * Sends what is waiting, then close_notify, then half-closes; reading goes on until the peer
   * ends. Before the handshake is complete it is remembered. Returns false (and drops `chunk`) once
   * our side had already ended.
   */
  end(chunk?: Uint8Array | string): boolean {
    if (!this.writable) return chunk === undefined ? false : this.dropped('end');
    if (chunk !== undefined) {
      this.write(chunk);
      if (this.transport.closed) return false;
    }
    if (this.state === State.Connecting) {
      this.requested = afterEnd(this.requested);
      return true;
    }
    this.state = afterEnd(this.state);
    if (this.pending.length === 0) this.finish();
    return true;
  }

  /**
   * The graceful close: no more data is delivered; what is waiting is sent, then close_notify; the
   * transport then lingers until the peer's end (Connection.close). Before the handshake is
   * complete it is remembered: the handshake's own deadline bounds the wait.
   */
  close(): void {
    if (this.transport.closed || this.closing) return;
    this.resume(); // Read on: what arrives is dropped, and close_notify seen.
    if (this.state === State.Connecting) {
      this.requested = afterClose(this.requested);
      return;
    }
    this.state = afterClose(this.state);
    if (this.shutdownSent) this.transport.close(); // After end(): close_notify is out already.
    else if (this.pending.length === 0) this.finish();
  }

  /** Closes now, dropping whatever is queued. `err`, if given, is reported through onError first (from the reactor's turn). */
  destroy(err?: Error): void {
    this.transport.destroy(err);
  }

  /** The transport's idle timeout (Connection.setIdleTimeout): ciphertext is the activity. */
  setIdleTimeout(ms: number, options?: IdleTimeoutOptions): void {
    this.transport.setIdleTimeout(ms, options);
  }

  setNoDelay(noDelay = true): void {
    this.transport.setNoDelay(noDelay);
  }

  [Symbol.dispose](): void {
    this.destroy();
  }

  private get target(): State {
    return this.state === State.Connecting ? this.requested : this.state;
  }

  private startClient(): void {
    try {
      this.engine!.handshake();
    } catch (err) {
      this.failed(err as Error);
      return;
    }
    this.sendRecords();
  }

  /** The transport's onData: ciphertext in, plaintext out to onData, and our records back in one write. */
  private received(data: Buffer): void {
    const engine = this.engine;
    if (engine === null) return;
    engine.feed(data);
    this.scratchLent = false;
    try {
      this.receiving = true;
      try {
        this.deliver();
      } finally {
        this.receiving = false;
      }
      this.sendRecords();
    } finally {
      // The transport uncorks as this returns: it sends or copies what it borrowed.
      if ((this.scratchLent as boolean | null) === true) cipherScratchLent = false; // (set by sendRecords meanwhile)
      this.scratchLent = null;
    }
    if (this.needDrain && !this.transportBlocked) this.schedulePump();
  }

  /** Decrypts and delivers until the engine has nothing more, or the application paused. */
  private deliver(): void {
    for (;;) {
      const engine = this.engine;
      if (engine === null || this.transport.closed || this.peerDone) return;
      if (this.paused && this.secure) {
        this.held = true;
        return;
      }
      this.held = false;
      let n: number;
      try {
        n = engine.read(plainScratch);
      } catch (err) {
        this.failed(err as Error);
        return;
      }
      if (!this.secure && engine.handshakeDone) {
        this.secured();
        if (this.transport.closed) return;
      }
      if (n === 0) return;
      if (n === -1) {
        this.peerEnded();
        return;
      }
      this.bytesRead += n;
      const onData = this.onData;
      if (onData === null || !deliversData(this.state)) continue; // Closing: read (so close_notify is seen) and drop.
      try {
        onData.call(this, plainScratch.subarray(0, n));
      } finally {
        if (this.transport.debug) plainScratch.fill(POISON, 0, n);
      }
    }
  }

  private secured(): void {
    if (this.handshakeTimer !== null) this.reactor.clearTimer(this.handshakeTimer);
    this.handshakeTimer = null;
    if (this.pin !== null) {
      const der = this.engine!.peerCertificate;
      const seen = der === null ? 'none' : fingerprint256(der);
      if (seen !== this.pin) {
        this.failed(Object.assign(new Error(`The server's certificate has fingerprint ${seen}, not the pinned ${this.pin}`),
          { code: 'ERR_TLS_CERT_FINGERPRINT' }));
        return;
      }
    }
    this.state = this.requested;
    const onSecure = this.onSecure;
    if (onSecure !== null) this.guarded('onSecure', () => onSecure.call(this));
    if (this.transport.closed) return;
    if (this.paused) this.transport.pause();
    this.pump();
  }

  /** Encrypts and sends; false when the transport's queue is past its high-water mark. */
  private encrypt(bytes: Uint8Array): boolean {
    try {
      this.engine!.write(bytes);
    } catch (err) {
      this.failed(err as Error);
      return false;
    }
    this.bytesWritten += bytes.length;
    return this.sendRecords();
  }

  /**
   * Hands the records the engine made to the transport (one write), unless corked or inside a read
   * (`last`: the close_notify, after which the transport ends: they go now).
   */
  private sendRecords(last = false): boolean {
    const engine = this.engine;
    if (engine === null || (!last && (this.corks > 0 || this.receiving))) return !this.transportBlocked;
    const size = engine.pending;
    if (size === 0) return !this.transportBlocked;
    let out: Buffer;
    if (this.scratchLent === true || cipherScratchLent) {
      out = Buffer.allocUnsafe(size);
    } else {
      if (size > cipherScratch.length) cipherScratch = Buffer.allocUnsafe(size);
      out = cipherScratch;
      if (this.scratchLent === false) this.scratchLent = cipherScratchLent = true;
    }
    const n = engine.pull(out, 0, size);
    // The transport sends it now, or copies what it cannot (the scratch is reused).
    if (!this.transport.write(out.subarray(0, n))) this.transportBlocked = true;
    return !this.transportBlocked;
  }

  /** pump() from the reactor's turn (once however often asked). */
  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    this.reactor.defer(() => {
      this.pumpQueued = false;
      if (!this.transport.closed) this.guarded('pump', () => this.pump());
    });
  }

  /**
   * Moves waiting writes and file ranges into the engine, as far as the transport takes them; then
   * close_notify if end() or close() waits for that, and onDrain if owed. Not inside the transport's
   * onData: the transport is corked then and would hold every record (a whole file) until it returns.
   */
  private pump(): void {
    if (this.receiving) {
      this.schedulePump();
      return;
    }
    while (this.secure && !this.transportBlocked && this.pending.length > 0 && !this.transport.closed) {
      const item = this.pending[0];
      if (!(item instanceof FileJob)) {
        this.pending.shift();
        this.pendingBytes -= item.length;
        this.encrypt(item);
        continue;
      }
      const left = item.end - item.position;
      let n = 0;
      if (left > 0) {
        try {
          n = this.engine!.writeFile(item.fd, item.position, Math.min(left, FILE_STEP));
        } catch (err) {
          this.failed(err as Error);
          return;
        }
        if (n === 0) {
          this.failed(new FileTruncatedError(item.position, item.end));
          return;
        }
      }
      item.position += n;
      this.bytesWritten += n;
      if (item.position === item.end) {
        this.pending.shift();
        const done = item.done;
        if (done !== null) this.guarded('sendFile done', () => done(null));
      }
      this.sendRecords();
    }
    if (this.transport.closed) return;
    if (this.pending.length === 0 && this.secure && flushingToShut(this.state) && !this.shutdownSent) this.finish();
    if (this.needDrain && !this.transportBlocked && this.pendingBytes < this.highWater / 4 && !this.transport.closed) {
      this.needDrain = false;
      const onDrain = this.onDrain;
      if (onDrain !== null) this.guarded('onDrain', () => onDrain.call(this));
    }
  }

  /**
   * Everything is encrypted: close_notify, then the transport's half-close — or its lingering close
   * when we are closing, or when the peer's close_notify came first (TLS is over both ways).
   */
  private finish(): void {
    this.shutdownSent = true;
    try {
      this.engine!.shutdown();
    } catch (err) {
      this.failed(err as Error);
      return;
    }
    this.sendRecords(true);
    if (this.closing || this.peerDone) this.transport.close();
    else this.transport.end();
  }

  private transportDrained(): void {
    this.transportBlocked = false;
    this.pump();
  }

  /**
   * @internal The transport has shut our side (close_notify and all are in the kernel): called at
   * once, so `lifecycle` says so before the peer can see the end (onFinish follows from the turn).
   */
  flushed(): void {
    const next = afterFlushed(this.state);
    if (next !== State.Closed) this.state = next;
  }

  /** The transport's onFinish, from the reactor's turn. */
  private finished(): void {
    this.onFinish?.call(this);
  }

  /** The peer's close_notify (or TCP's end after the handshake). */
  private peerEnded(): void {
    const before = this.state;
    this.peerDone = true;
    const next = afterPeerEnd(before);
    // Ours had gone already: TLS is over both ways, and the transport closes the lingering way.
    this.state = next === State.Closed ? State.Lingering : next;
    if (this.shutdownSent) this.transport.close();
    if (before === State.Closing || before === State.Lingering) return; // The close goes on; no onEnd.
    const onEnd = this.onEnd;
    if (onEnd === null) this.end();
    else this.guarded('onEnd', () => onEnd.call(this));
  }

  /** TCP's end of stream: after close_notify, nothing new; after the handshake without it, a (possibly truncated) end; before, a failure. */
  private transportEnded(): void {
    if (this.peerDone) return;
    if (!this.secure) {
      // After our close() (a Listener's shutdown, say) the peer's leaving is what we asked for: no error,
      // and no waiting for a handshake that cannot finish.
      if (this.closing) this.transport.close();
      else this.transport.destroy(Object.assign(new Error('The peer closed the connection during the TLS handshake'), { code: 'ECONNRESET' }));
      return;
    }
    if (this.closing) return;
    this.truncated = true;
    this.peerEnded();
  }

  private timedOut(): void {
    if (this.onTimeout !== null) this.onTimeout.call(this);
    else this.transport.destroy(systemError(constants.errno.ETIMEDOUT, 'idle', '(no activity)'));
  }

  /** A TLS failure: the alert OpenSSL queued goes out if the socket takes it, then the connection is destroyed. */
  private failed(err: Error): void {
    if (this.transport.closed) return;
    try {
      this.sendRecords(true);
    } catch {
      // The alert is a courtesy.
    }
    this.transport.destroy(err);
  }

  /** A write, end or sendFile after our side ended: counted, reported in debug mode, and false. */
  private dropped(call: string): false {
    this.droppedWrites++;
    if (this.transport.debug) this.transport.log(`fd ${this.fd}: ${call}() on a connection that is ${this.lifecycle}: dropped\n${new Error('dropped here').stack}`);
    return false;
  }

  /** Runs a callback (or work that calls one) from the turn: a throw destroys this connection alone, logged when no onError hears of it. */
  private guarded(name: string, work: () => void): void {
    try {
      work();
    } catch (err) {
      this.transport.threw(name, err); // Its onError is ours (or null with ours), so it logs just when we would.
    }
  }

  /** A callback owed from the reactor's turn (paid before onClose at the latest). */
  private owe(callback: () => void): void {
    this.owed.push(callback);
    if (this.owed.length === 1) this.reactor.defer(() => this.payOwed());
  }

  private payOwed(): void {
    const owed = this.owed;
    this.owed = [];
    for (const callback of owed) this.guarded('sendFile done', callback);
  }

  /** The transport's onClose: what is owed and every file still queued is settled, then onClose. */
  private released(err: ConnectionError | null): void {
    if (this.handshakeTimer !== null) this.reactor.clearTimer(this.handshakeTimer);
    this.handshakeTimer = null;
    this.engine?.free();
    this.engine = null;
    this.payOwed();
    const files = this.pending.filter((item): item is FileJob => item instanceof FileJob);
    this.pending = [];
    this.pendingBytes = 0;
    const lost = err ?? new Error('The connection was closed before this was sent');
    for (const file of files) {
      const done = file.done;
      if (done !== null) this.guarded('sendFile done', () => done(lost));
    }
    this.onClose?.call(this, err);
  }
}
