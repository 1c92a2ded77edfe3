/**
 * The file-transfer server: the protocol's policy (protocol.ts, docs/file-transfer.md) on the stream
 * layer, serving any number of uploads and downloads at once on one reactor — yours, blocking in
 * run() or attached to Node's loop: the server needs no Node callback, only its reactor.
 *
 * Uploads. PUT names the content (name, size, SHA-256); the server answers ACCEPT with how many
 * bytes it already holds for exactly that content (store.ts keeps partials beside the destination),
 * the client sends the rest, unframed, and the decoder hands it over as views of the read buffer.
 * Each view is written to the partial at once, synchronously: the socket is never read faster than
 * the disk takes the bytes, since the next recv waits for this write (backpressure with nothing in
 * between: no copy, no queue, memory independent of the file's size). The price: a slow disk holds
 * up the reactor for one write of at most one read (1 MiB), which the page cache makes short. A
 * hashing thread (hasher.ts) reads the bytes back behind the writes; once the last one is in, the
 * digest decides: STORED after an atomic rename into place, or MISMATCH and the partial is dropped.
 *
 * Downloads. GET says how much the client holds and of which version (size, mtime, hash); the server
 * resumes from there only if that is still the source, else from 0, and sends with sendFile. The
 * source's hash is computed once per version (dev, inode, size, mtime, ctime) and cached.
 *
 * Faults. A frame that is not a valid message closes its connection alone (after an ERROR saying
 * why); a refusal (unsafe name, missing file, busy name, too large) leaves the connection open for
 * another request. A connection lost mid-upload keeps its partial for the next attempt. ENOSPC
 * answers NO_SPACE and keeps what was written. None of it touches another transfer.
 */
import * as fs from 'node:fs';
import { isSystemError } from '../errors';
import { SocketAddress } from '../native';
import { printable } from '../printable';
import { Reactor } from '../reactor';
import { Connection, ConnectionOptions, isDisconnect } from '../stream/connection';
import type { Endpoint } from '../stream/endpoint';
import { FrameError, LengthPrefixedDecoder, writeFrame } from '../stream/framing';
import { Listener } from '../stream/listener';
import { TlsConnection } from '../stream/tls-connection';
import type { TlsContext } from '../stream/tls-context';
import { FileHasher, FileHasherOptions, HashJob } from './hasher';
import {
  decode, encode, ErrorCodeName, GetRequest, MAX_MESSAGE_SIZE, ProtocolError, PutRequest, Reply,
} from './protocol';
import { FileStore, PartialUpload, Source } from './store';

export interface FileServerOptions {
  /** The reactor to serve on: run() or attach() it yourself. */
  reactor: Reactor;
  /** The directory served: uploads land here, downloads come from here. */
  dir: string;
  /** Where to listen. Default 127.0.0.1, a free port. */
  endpoint?: Endpoint;
  backlog?: number;
  /** Refuse uploads larger than this, before any byte is stored. Default: no limit. */
  maxSize?: number;
  /** Close connections idle this long (0: never). Default 5 minutes. */
  idleTimeoutMs?: number;
  /** Where transfers, refusals and faults are reported, one line each. Default: nowhere. */
  log?: (line: string) => void;
  /** Serve TLS (a server context: TlsContext.server({ cert, key })) from every connection's first byte. Default: none. */
  tls?: TlsContext | null;
  /** Makes the hashing thread (FileHasherOptions.createWorker): a seam for tests that inject failures. */
  createHashWorker?: FileHasherOptions['createWorker'];
}

export interface FileServerStats {
  connections: number;
  accepted: number;
  /** Uploads verified and put in place. */
  stored: number;
  /** Downloads sent to the end. */
  sent: number;
  /** Transfers that went on from a partial (uploads from the server's, downloads from the client's). */
  resumed: number;
  /** Requests refused (unsafe name, missing, busy, too large, forbidden). */
  refused: number;
  /** Uploads whose bytes did not have the announced hash. */
  mismatches: number;
  /** Connections closed for a malformed frame. */
  malformed: number;
  /** Transfers cut off before their end (connection lost, no space, shutdown). */
  interrupted: number;
  bytesReceived: number;
  bytesSent: number;
}

/**
 * Bytes per recv. Level-triggered, a connection gets one recv per wake-up: 1 MiB makes it 1024
 * wake-ups per GiB instead of 4096 (measured: 0.9 s against 1.1 s a GiB with 256 KiB). The read
 * buffer is one per thread, whatever the number of connections.
 */
const READ_SIZE = 1024 * 1024;
/** Versions of sources whose hash is remembered. */
const HASH_CACHE_SIZE = 1024;

type State = 'idle' | 'receiving' | 'verifying' | 'preparing' | 'sending';

interface Upload {
  partial: PartialUpload;
  job: HashJob;
  /** The next byte to write (the file's length). */
  position: number;
}

interface Download {
  source: Source;
  job: HashJob | null;
}

export class FileServer {
  readonly reactor: Reactor;
  readonly store: FileStore;
  private readonly listener: Listener<Session>;
  private readonly hasher: FileHasher;
  private readonly maxSize: number;
  private readonly log: (line: string) => void;
  /** Names being uploaded: a second upload of one is refused (BUSY), so bytes never interleave. */
  private readonly uploading = new Map<string, Session>();
  private readonly hashes = new Map<string, Buffer>();
  private readonly counts = {
    stored: 0, sent: 0, resumed: 0, refused: 0, mismatches: 0, malformed: 0, interrupted: 0, bytesReceived: 0, bytesSent: 0,
  };
  /** Descriptors still open (files, and hash jobs that must answer before their file closes). */
  private openFiles = 0;
  private closing = false;
  private onClosed: (() => void) | null = null;

  constructor(options: FileServerOptions) {
    this.reactor = options.reactor;
    this.store = new FileStore(options.dir);
    this.maxSize = options.maxSize ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(this.maxSize) || this.maxSize < 0) throw new RangeError(`maxSize must be an integer >= 0; got ${options.maxSize}`);
    // Names and messages from clients reach every line: escaped once, here (printable.ts).
    const log = options.log ?? (() => undefined);
    this.log = (line) => log(printable(line));
    this.hasher = new FileHasher(this.reactor, { createWorker: options.createHashWorker });
    const connection: ConnectionOptions = { readSize: READ_SIZE, idleTimeoutMs: options.idleTimeoutMs ?? 300_000, lingerMs: 5000 };
    this.listener = new Listener(this.reactor, {
      endpoint: options.endpoint ?? { host: '127.0.0.1', port: 0 }, backlog: options.backlog, log: this.log, connection,
    }, (conn) => {
      const tls = options.tls ?? null;
      conn.data = new Session(this, tls === null ? conn : TlsConnection.server(conn, { context: tls }));
    });
  }

  /** Binds and starts accepting; returns the bound address (the real port for port 0). */
  listen(): SocketAddress {
    return this.listener.listen();
  }

  get address(): SocketAddress | null {
    return this.listener.address;
  }

  get stats(): FileServerStats {
    return { connections: this.listener.connectionCount, accepted: this.listener.stats.accepted, ...this.counts };
  }

  /**
   * Stops accepting and ends every connection; transfers in flight keep their partials (an upload
   * resumes from them next time). `done` runs on the reactor once every connection and file is
   * closed: then stop or close the reactor. The promise resolves after that, once the hashing thread
   * has exited too (which needs Node's loop: await it only with the reactor attached, or after run()).
   */
  close(done?: () => void): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      this.listener.close();
      this.finished = new Promise((resolve) => {
        this.onClosed = () => {
          done?.();
          void this.hasher.close().then(resolve);
        };
      });
      // A connection whose Session was never built (its constructor threw) has none: skipped.
      for (const conn of this.listener.connections) (conn.data as Session | undefined)?.shutdown();
      this.checkClosed();
    } else if (done) {
      void this.finished.then(done);
    }
    return this.finished;
  }

  private finished: Promise<void> = Promise.resolve();

  // ---- for sessions ----

  /** @internal */
  note(line: string): void {
    this.log(line);
  }

  /** @internal */
  count(what: keyof FileServer['counts'], n = 1): void {
    this.counts[what] += n;
  }

  /** @internal Refuses an upload of a name another session is uploading. */
  claim(name: string, session: Session): void {
    const holder = this.uploading.get(name);
    if (holder !== undefined && holder !== session) {
      throw new ProtocolError('BUSY', `${JSON.stringify(name)} is being uploaded by another client; try again when it is done`);
    }
    this.uploading.set(name, session);
  }

  /** @internal */
  release(name: string, session: Session): void {
    if (this.uploading.get(name) === session) this.uploading.delete(name);
  }

  /** @internal */
  get limit(): number {
    return this.maxSize;
  }

  /** @internal */
  hashJob(fd: number): HashJob {
    return this.hasher.hash(fd);
  }

  /** @internal The cached hash of this version of a source, if known. */
  cachedHash(source: Source): Buffer | undefined {
    return this.hashes.get(source.identity);
  }

  /** @internal Remembers the hash of a version of a file (Source.identity), the oldest forgotten first. */
  rememberHash(identity: string, digest: Buffer): void {
    if (this.hashes.size >= HASH_CACHE_SIZE) this.hashes.delete(this.hashes.keys().next().value!);
    this.hashes.set(identity, digest);
  }

  /** @internal A file (and its hash job) was opened; closeFile when it is closed. */
  openedFile(): void {
    this.openFiles++;
  }

  /** @internal */
  closeFile(fd: number): void {
    try {
      fs.closeSync(fd);
    } finally {
      this.openFiles--;
      this.checkClosed();
    }
  }

  /** @internal */
  ended(): void {
    this.checkClosed();
  }

  get isClosing(): boolean {
    return this.closing;
  }

  private checkClosed(): void {
    if (!this.closing || this.listener.connectionCount > 0 || this.openFiles > 0) return;
    const done = this.onClosed;
    this.onClosed = null;
    done?.();
  }
}

/** One connection: requests one at a time, each answered before the next is read. */
class Session {
  private state: State = 'idle';
  private upload: Upload | null = null;
  private download: Download | null = null;
  private readonly decoder = new LengthPrefixedDecoder((body) => this.onFrame(body), { maxFrameSize: MAX_MESSAGE_SIZE });
  private readonly peer: string;
  /** The client half-closed while a request was in flight: end our side once it is answered. */
  private peerFinished = false;

  constructor(private readonly server: FileServer, private readonly conn: Connection | TlsConnection) {
    this.peer = describePeer(conn);
    conn.onData = (data) => this.onData(data);
    conn.onEnd = () => this.onEnd();
    conn.onClose = (err: Error | null) => this.onClose(err);
  }

  /**
   * Server shutdown. An upload stops where it is (its partial kept) and is told why; the connection
   * then closes the lingering way, reading and dropping what the client still sends until it goes,
   * so the answer is not lost to a reset. A download's bytes are on the wire: no answer can be framed
   * in between, so that connection is cut.
   */
  shutdown(): void {
    if (this.state === 'sending') {
      this.conn.destroy();
      return;
    }
    if (this.state !== 'idle') {
      if (this.upload !== null) {
        const { partial, position } = this.upload;
        this.server.count('interrupted');
        this.server.note(`put ${JSON.stringify(partial.name)} from ${this.peer}: connection closed by shutdown at byte ${position} ` +
          `of ${partial.size}; partial kept`);
        this.endUpload();
      }
      this.endDownload();
      this.decoder.stop();
      this.state = 'idle';
      this.reply({ type: 'error', code: 'SHUTTING_DOWN', message: 'the server is shutting down; try again later' });
    }
    this.conn.close();
  }

  private onData(data: Buffer): void {
    try {
      this.decoder.push(data);
    } catch (err) {
      if (err instanceof FrameError) this.malformed(`${err.message} (at most ${MAX_MESSAGE_SIZE})`);
      else if (err instanceof ProtocolError && err.code === 'BAD_MESSAGE') this.malformed(err.message);
      else throw err;
    }
  }

  private onFrame(body: Buffer): void {
    if (this.state !== 'idle') throw new ProtocolError('BAD_MESSAGE', `a request arrived before the answer to the previous one (${this.state})`);
    if (this.server.isClosing) {
      this.refuse('SHUTTING_DOWN', 'the server is shutting down; try again later');
      return;
    }
    let request: PutRequest | GetRequest;
    try {
      const message = decode(body);
      if (message.type !== 'put' && message.type !== 'get') throw new ProtocolError('BAD_MESSAGE', `a client sent a ${message.type.toUpperCase()} message`);
      request = message;
    } catch (err) {
      if (err instanceof ProtocolError && err.code !== 'BAD_MESSAGE') {
        this.refuse(err.code, err.message);
        return;
      }
      throw err;
    }
    try {
      if (request.type === 'put') this.startUpload(request);
      else this.startDownload(request);
    } catch (err) {
      if (err instanceof ProtocolError) this.refuse(err.code, err.message);
      else this.failRequest(request.name, err);
    }
  }

  // ---- uploads ----

  private startUpload(request: PutRequest): void {
    const { name, size } = request;
    if (size > this.server.limit) {
      throw new ProtocolError('TOO_LARGE', `${JSON.stringify(name)} is ${size} bytes; this server takes at most ${this.server.limit} (--max-size)`);
    }
    this.server.store.checkDestination(name);
    this.server.claim(name, this);
    let partial: PartialUpload;
    try {
      partial = this.server.store.openPartial(name, size, request.sha256);
    } catch (err) {
      this.server.release(name, this);
      throw err;
    }
    this.server.openedFile();
    let job: HashJob;
    try {
      job = this.server.hashJob(partial.fd);
    } catch (err) {
      // No hashing thread (no descriptor for it, a failing Worker): give back the file and the name.
      this.server.closeFile(partial.fd);
      this.server.release(name, this);
      throw err;
    }
    // The bytes held already are hashed from disk, ahead of the ones about to arrive.
    job.feed(partial.offset);
    this.upload = { partial, job, position: partial.offset };
    if (partial.offset > 0) this.server.count('resumed');
    this.server.note(partial.offset > 0
      ? `put ${JSON.stringify(name)} from ${this.peer}: resuming at byte ${partial.offset} of ${size} (held from an earlier attempt)`
      : `put ${JSON.stringify(name)} from ${this.peer}: receiving ${size} bytes`);
    this.reply({ type: 'accept', offset: partial.offset });
    if (partial.offset === size) {
      this.verify();
      return;
    }
    this.state = 'receiving';
    this.decoder.passThrough(size - partial.offset, (bytes) => this.receive(bytes));
  }

  private receive(bytes: Buffer): void {
    const upload = this.upload!;
    try {
      writeAll(upload.partial.fd, bytes, upload.position);
    } catch (err) {
      this.uploadFailed(err);
      return;
    }
    upload.position += bytes.length;
    this.server.count('bytesReceived', bytes.length);
    upload.job.feed(upload.position);
    if (upload.position === upload.partial.size) this.verify();
  }

  /** All bytes are on disk: wait for the hash (reading nothing meanwhile), then answer. */
  private verify(): void {
    const upload = this.upload!;
    this.state = 'verifying';
    this.conn.pause();
    upload.job.digest((err, digest) => {
      const { partial } = upload;
      const name = JSON.stringify(partial.name);
      let reply: Reply;
      try {
        if (err !== null) throw err;
        if (digest!.equals(partial.sha256)) {
          // The verified hash is the stored file's: a get of it needs no hashing pass.
          this.server.rememberHash(this.server.store.commit(partial), digest!);
          this.server.count('stored');
          this.server.note(`put ${name} from ${this.peer}: ${partial.size} bytes stored, sha256 ${digest!.toString('hex')} verified`);
          reply = { type: 'stored', size: partial.size, sha256: digest! };
        } else {
          this.server.store.discard(partial);
          this.server.count('mismatches');
          this.server.note(`put ${name} from ${this.peer}: MISMATCH (got sha256 ${digest!.toString('hex')}); partial dropped`);
          reply = { type: 'error', code: 'MISMATCH', message: `the ${partial.size} bytes received have sha256 ${digest!.toString('hex')}, ` +
            `not the ${partial.sha256.toString('hex')} announced; the partial was dropped, so a retry starts from 0` };
        }
      } catch (failure) {
        reply = { type: 'error', code: errorCodeOf(failure), message: `storing ${name}: ${(failure as Error).message}` };
        this.server.note(`put ${name} from ${this.peer}: ${(failure as Error).message}`);
      }
      this.endUpload();
      this.reply(reply);
      this.conn.resume();
      this.becomeIdle();
    });
  }

  /** Writing failed (no space, an I/O error): say so, keep what was written, end this connection. */
  private uploadFailed(err: unknown): void {
    const upload = this.upload!;
    const code = errorCodeOf(err);
    const name = JSON.stringify(upload.partial.name);
    this.server.count('interrupted');
    this.server.note(`put ${name} from ${this.peer}: ${(err as Error).message} at byte ${upload.position} of ${upload.partial.size}; partial kept`);
    this.decoder.stop();
    this.reply({ type: 'error', code, message: `${code === 'NO_SPACE' ? 'no space left on the server' : 'the server could not write'}` +
      ` after ${upload.position} of ${upload.partial.size} bytes of ${name}; what was written is kept for a retry` });
    this.endUpload();
    this.state = 'idle';
    this.conn.close();
  }

  /** Releases the name and the file; the hash job answers first (it may still read the file). */
  private endUpload(): void {
    const upload = this.upload;
    if (upload === null) return;
    this.upload = null;
    this.server.release(upload.partial.name, this);
    const fd = upload.partial.fd;
    upload.job.abort(() => this.server.closeFile(fd));
  }

  // ---- downloads ----

  private startDownload(request: GetRequest): void {
    const source = this.server.store.openSource(request.name);
    this.server.openedFile();
    this.download = { source, job: null };
    const cached = this.server.cachedHash(source);
    if (cached !== undefined) {
      this.send(request, cached);
      return;
    }
    // First request for this version of the file: hash it on the thread, reading nothing meanwhile.
    // (A thread that cannot start throws here, before anything waits: failRequest closes the file.)
    const job = this.server.hashJob(source.fd);
    this.state = 'preparing';
    this.conn.pause();
    this.download.job = job;
    job.feed(source.size);
    job.digest((err, digest) => {
      if (this.download === null || this.download.job !== job) return;
      this.download.job = null;
      this.conn.resume();
      if (err !== null) {
        this.failRequest(request.name, err);
        this.becomeIdle();
        return;
      }
      this.server.rememberHash(source.identity, digest!);
      this.send(request, digest!);
    });
  }

  private send(request: GetRequest, sha256: Buffer): void {
    const { source } = this.download!;
    const same = request.have > 0 && request.size === source.size && request.mtimeNs === source.mtimeNs &&
      request.sha256 !== null && request.sha256.equals(sha256);
    const offset = same ? request.have : 0;
    const name = JSON.stringify(request.name);
    if (same) this.server.count('resumed');
    this.server.note(same
      ? `get ${name} to ${this.peer}: resuming at byte ${offset} of ${source.size} (the client's partial matches)`
      : `get ${name} to ${this.peer}: sending ${source.size} bytes${request.have > 0 ? ' (the client\'s partial is of another version: from 0)' : ''}`);
    this.state = 'sending';
    this.reply({ type: 'sending', offset, size: source.size, mtimeNs: source.mtimeNs, sha256 });
    const length = source.size - offset;
    this.conn.sendFile(source.fd, offset, length, (err) => {
      if (err === null) {
        this.server.count('sent');
        this.server.count('bytesSent', length);
        this.server.note(`get ${name} to ${this.peer}: ${source.size} bytes sent`);
      }
      this.endDownload();
      if (this.state === 'sending') this.becomeIdle();
    });
  }

  private endDownload(): void {
    const download = this.download;
    if (download === null) return;
    this.download = null;
    const fd = download.source.fd;
    if (download.job !== null) download.job.abort(() => this.server.closeFile(fd));
    else this.server.closeFile(fd);
  }

  // ---- answers and endings ----

  private reply(message: Reply): void {
    writeFrame(this.conn, encode(message));
  }

  /** A valid request refused: say why; the connection stays for the next one. */
  private refuse(code: ErrorCodeName, message: string): void {
    this.server.count('refused');
    this.server.note(`refused ${this.peer}: ${code}: ${message}`);
    this.reply({ type: 'error', code, message });
  }

  /** An unexpected failure serving one request (an I/O error): reported to the client, logged. */
  private failRequest(name: string, err: unknown): void {
    this.endDownload();
    const code = errorCodeOf(err);
    this.server.note(`${this.peer}: ${JSON.stringify(name)}: ${(err as Error).message}`);
    this.reply({ type: 'error', code, message: `${JSON.stringify(name)}: ${(err as Error).message}` });
  }

  /** Not a valid message: nothing more from this connection can be trusted. Answer, then close it. */
  private malformed(why: string): void {
    this.server.count('malformed');
    this.server.note(`malformed frame from ${this.peer}: ${why}; closing that connection`);
    this.decoder.stop();
    if (this.state === 'sending') {
      // A file's bytes are on the wire: no answer can be framed in between.
      this.conn.destroy();
      return;
    }
    this.reply({ type: 'error', code: 'BAD_MESSAGE', message: why });
    this.conn.close();
  }

  /** The request is answered: read the next one, or finish if the client already has. */
  private becomeIdle(): void {
    this.state = 'idle';
    if (this.peerFinished) this.conn.end();
  }

  private onEnd(): void {
    if (this.decoder.buffered > 0) {
      this.server.count('malformed');
      this.server.note(`malformed frame from ${this.peer}: the connection ended inside a frame ` +
        `(${this.decoder.buffered} bytes of it); closing`);
    }
    // A client may half-close once its request (and body) is sent: answer it first. Mid-body, the
    // body will never be complete: end now (the partial is kept).
    if (this.state === 'verifying' || this.state === 'preparing' || this.state === 'sending') {
      this.peerFinished = true;
      return;
    }
    this.conn.end();
  }

  private onClose(err: Error | null): void {
    if (this.upload !== null) {
      const { partial, position } = this.upload;
      this.server.count('interrupted');
      this.server.note(`put ${JSON.stringify(partial.name)} from ${this.peer}: connection lost ` +
        `at byte ${position} of ${partial.size}; partial kept${err !== null && !isDisconnect(err) ? ` (${err.message})` : ''}`);
      this.endUpload();
    }
    if (this.download !== null) {
      if (this.state === 'sending') this.server.count('interrupted');
      this.endDownload();
    }
    this.server.ended();
  }
}

/** Writes all of `bytes` at `position` (a regular file takes everything, unless the disk is full). */
function writeAll(fd: number, bytes: Buffer, position: number): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
}

function errorCodeOf(err: unknown): ErrorCodeName {
  if (err instanceof ProtocolError) return err.code;
  if (isSystemError(err, 'ENOSPC') || isSystemError(err, 'EDQUOT') || isSystemError(err, 'EFBIG')) return 'NO_SPACE';
  return 'SERVER_ERROR';
}

function describePeer(conn: Connection | TlsConnection): string {
  try {
    const peer = conn.remoteAddress;
    if (peer.family === 'unix') return 'a local client';
    return peer.family === 'IPv6' ? `[${peer.address}]:${peer.port}` : `${peer.address}:${peer.port}`;
  } catch {
    return 'a client';
  }
}
