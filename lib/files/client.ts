/**
 * The file-transfer client: `putFile` and `getFile` on a reactor (attach it, or run() it until the
 * promise settles). Each settles once, after everything it opened is closed, with a result whose hash
 * was verified, or with a TransferError whose `reason` says what a user needs to know: refused,
 * mismatch, connection lost, no space (or failed, for anything else).
 *
 * put: hash the file (on the hashing thread), announce (name, size, SHA-256), send from the offset
 * the server answers with sendFile, and wait for the server's verdict.
 * get: say what part of which version is held already (`PATH.partial` and its metadata in
 * `PATH.partial.json`), receive from the offset the server grants, writing each read to the partial
 * at once (as the server does: the socket is never read faster than the disk takes it), hash behind
 * the writes, and rename into place only once the hash is verified.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isSystemError } from '../errors';
import { Reactor } from '../reactor';
import { Connection } from '../stream/connection';
import { TlsConnection } from '../stream/tls-connection';
import type { TlsContext } from '../stream/tls-context';
import type { Endpoint } from '../stream/endpoint';
import { FrameError, LengthPrefixedDecoder, writeFrame } from '../stream/framing';
import { Timer } from '../timer-queue';
import { FileHasher, HashJob } from './hasher';
import { decode, encode, ErrorCodeName, MAX_MESSAGE_SIZE, nameProblem, ProtocolError, Reply, Request } from './protocol';

export type FailureReason = 'refused' | 'mismatch' | 'connection lost' | 'no space' | 'failed';

/** Why a transfer did not end with a verified file. */
export class TransferError extends Error {
  constructor(readonly reason: FailureReason, message: string, readonly code?: ErrorCodeName) {
    super(message);
    this.name = 'TransferError';
  }
}

export interface Progress {
  phase: 'hashing' | 'sending' | 'receiving' | 'verifying';
  /** Bytes of the file done in this phase, counting what was held before (so done / total is the bar). */
  done: number;
  total: number;
  /** Where the transfer started (the bytes held from an earlier attempt). */
  offset: number;
}

export interface TransferOptions {
  reactor: Reactor;
  endpoint: Endpoint;
  onProgress?: (progress: Progress) => void;
  /** Notable events, one line each ("resuming at byte N"). */
  log?: (line: string) => void;
  /** At most this many bytes per second (0: as fast as it goes). */
  limitRate?: number;
  /** Default 10 s. */
  connectTimeoutMs?: number;
  /** Share a hashing thread; by default each transfer starts one and ends it. */
  hasher?: FileHasher;
  /**
   * Speak TLS (a client context: TlsContext.client({ ca }) verifies the server's certificate and
   * name; TlsContext.client({ verify: false }) with `fingerprint256` pins it instead). Default: none.
   */
  tls?: { context: TlsContext; servername?: string; fingerprint256?: string } | null;
}

export interface PutOptions extends TransferOptions {
  file: string;
  /** The name on the server. Default: the file's base name. */
  name?: string;
}

export interface GetOptions extends TransferOptions {
  name: string;
  /** Where the file goes. Default: the name, in the current directory. */
  output?: string;
}

export interface TransferResult {
  name: string;
  /** The local file. */
  path: string;
  size: number;
  /** Where this attempt started: bytes held from an earlier one. */
  offset: number;
  sha256: string;
  /** From the request to the verdict (hashing before a put excluded). */
  seconds: number;
  /** Bytes that crossed the network in this attempt. */
  transferred: number;
}

const PROGRESS_MS = 100;
const HASH_PROGRESS = 16 * 1024 * 1024;

/** Which user-facing reason an ERROR code is. */
export function reasonOf(code: ErrorCodeName): FailureReason {
  switch (code) {
    case 'MISMATCH': return 'mismatch';
    case 'NO_SPACE': return 'no space';
    case 'SHUTTING_DOWN': return 'connection lost';
    case 'SERVER_ERROR': return 'failed';
    default: return 'refused';
  }
}

/** A TLS error (ERR_SSL_…, ERR_TLS_…) or a certificate check's (DEPTH_ZERO_SELF_SIGNED_CERT, …). */
function isTlsFailure(err: Error | null): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^ERR_(SSL|TLS)_|CERT|UNABLE_TO_/.test(code);
}

export function putFile(options: PutOptions): Promise<TransferResult> {
  return new Promise((resolve, reject) => new Upload(options, resolve, reject).start());
}

export function getFile(options: GetOptions): Promise<TransferResult> {
  return new Promise((resolve, reject) => new Download(options, resolve, reject).start());
}

/** What both directions share: the connection, its replies, progress, and tearing down in order. */
abstract class Transfer {
  protected conn: Connection | TlsConnection | null = null;
  protected readonly decoder = new LengthPrefixedDecoder((body) => this.onFrame(body), { maxFrameSize: MAX_MESSAGE_SIZE });
  protected readonly hasher: FileHasher;
  protected readonly reactor: Reactor;
  protected fd = -1;
  protected job: HashJob | null = null;
  protected size = 0;
  protected offset = 0;
  protected started = 0;
  private readonly ownsHasher: boolean;
  private progressTimer: Timer | null = null;
  private outcome: { result: TransferResult } | { error: TransferError } | null = null;
  /** Things that must end before the promise settles: the connection, the hash job, a file range in flight. */
  private readonly open = { conn: false, job: false, file: false };
  private settled = false;

  constructor(protected readonly options: TransferOptions, private readonly resolve: (r: TransferResult) => void,
    private readonly reject: (e: TransferError) => void) {
    this.reactor = options.reactor;
    this.ownsHasher = options.hasher === undefined;
    this.hasher = options.hasher ?? new FileHasher(options.reactor);
  }

  abstract start(): void;
  protected abstract onReply(reply: Reply): void;
  /** Bytes of the file done so far in the current network phase. */
  protected abstract position(): number;

  protected connect(request: Request): void {
    // 1 MiB reads: a download takes a quarter of the wake-ups 256 KiB would (see the server's READ_SIZE).
    const connection = { timeoutMs: this.options.connectTimeoutMs ?? 10_000, lingerMs: 2000, readSize: 1024 * 1024 };
    const tls = this.options.tls ?? null;
    const conn = tls === null ? Connection.connect(this.reactor, this.options.endpoint, connection)
      : TlsConnection.connect(this.reactor, this.options.endpoint, { ...connection, ...tls });
    this.conn = conn;
    this.open.conn = true;
    conn.onData = (data) => {
      try {
        this.decoder.push(data);
      } catch (err) {
        if (err instanceof FrameError || err instanceof ProtocolError) this.fail('failed', `the server sent something unreadable: ${err.message}`);
        else throw err;
      }
    };
    conn.onClose = (err: Error | null) => {
      this.open.conn = false;
      if (this.outcome === null) {
        const why = err === null ? 'the server closed the connection' : err.message;
        // A refused certificate or a failed handshake will not go away by retrying: not "connection lost".
        if (isTlsFailure(err)) this.fail('failed', why);
        else this.fail('connection lost', `${why}${this.lostNote()}`);
      }
      this.settle();
    };
    this.started = performance.now();
    writeFrame(conn, encode(request));
  }

  protected hashFile(fd: number, from: number, onProgress?: (hashed: number) => void): HashJob {
    const job = this.hasher.hash(fd, onProgress ? { progressEvery: HASH_PROGRESS, onProgress } : {});
    this.job = job;
    this.open.job = true;
    job.feed(from);
    return job;
  }

  /** The job has answered: the thread no longer reads the file. */
  protected jobEnded(): void {
    this.job = null;
    this.open.job = false;
  }

  protected fileRangeQueued(): void {
    this.open.file = true;
  }

  protected fileRangeDone(): void {
    this.open.file = false;
    this.settle();
  }

  protected progress(phase: Progress['phase'], done: number): void {
    this.options.onProgress?.({ phase, done, total: this.size, offset: this.offset });
  }

  /** Reports the network phase's progress every 100 ms. */
  protected startProgress(phase: 'sending' | 'receiving'): void {
    if (!this.options.onProgress) return;
    this.progress(phase, this.position());
    this.progressTimer = this.reactor.setInterval(() => this.progress(phase, this.position()), PROGRESS_MS);
  }

  protected log(line: string): void {
    this.options.log?.(line);
  }

  protected succeed(result: Omit<TransferResult, 'seconds'>): void {
    if (this.outcome !== null) return;
    this.outcome = { result: { ...result, seconds: (performance.now() - this.started) / 1000 } };
    this.stopTimers();
    this.conn?.close();
    this.settle();
  }

  protected fail(reason: FailureReason, message: string, code?: ErrorCodeName): void {
    if (this.outcome !== null) return;
    this.outcome = { error: new TransferError(reason, message, code) };
    this.stopTimers();
    this.decoder.stop();
    this.conn?.destroy();
    if (this.job !== null) {
      const job = this.job;
      job.abort(() => {
        this.jobEnded();
        this.settle();
      });
    }
    this.settle();
  }

  /** What a lost connection means for the user, for the message. */
  protected lostNote(): string {
    return '';
  }

  protected get finished(): boolean {
    return this.outcome !== null;
  }

  private onFrame(body: Buffer): void {
    const reply = decode(body);
    if (reply.type === 'error') {
      this.fail(reasonOf(reply.code), reply.message, reply.code);
      return;
    }
    if (reply.type === 'put' || reply.type === 'get') throw new ProtocolError('BAD_MESSAGE', `a server sent a ${reply.type.toUpperCase()}`);
    this.onReply(reply);
  }

  private stopTimers(): void {
    if (this.progressTimer !== null) this.reactor.clearTimer(this.progressTimer);
    this.progressTimer = null;
    this.clearTimers();
  }

  protected clearTimers(): void {
    // Subclasses with timers of their own clear them here.
  }

  /** Settles once nothing is open any more: the file is closed last, once nobody reads it. */
  private settle(): void {
    if (this.settled || this.outcome === null || this.open.conn || this.open.job || this.open.file) return;
    this.settled = true;
    if (this.fd >= 0) {
      fs.closeSync(this.fd);
      this.fd = -1;
    }
    const outcome = this.outcome;
    // A hashing thread of our own is gone (with its loop's descriptors) before the promise settles.
    void (this.ownsHasher ? this.hasher.close() : Promise.resolve()).then(() => {
      if ('result' in outcome) this.resolve(outcome.result);
      else this.reject(outcome.error);
    });
  }

  /** For subclasses: a local failure (the file, the disk) as a TransferError reason. */
  protected localFailure(err: unknown, what: string): void {
    const e = err as NodeJS.ErrnoException;
    if (isSystemError(err, 'ENOSPC') || isSystemError(err, 'EDQUOT')) this.fail('no space', `${what}: no space left on this disk`);
    else this.fail('failed', `${what}: ${e.message}`);
  }
}

class Upload extends Transfer {
  private name = '';
  private sha256: Buffer | null = null;
  private bodyStart = 0;
  private sentUpTo = 0;
  private rateTimer: Timer | null = null;

  constructor(private readonly put: PutOptions, resolve: (r: TransferResult) => void, reject: (e: TransferError) => void) {
    super(put, resolve, reject);
  }

  start(): void {
    this.name = this.put.name ?? path.basename(this.put.file);
    const problem = nameProblem(this.name);
    if (problem !== null) {
      this.fail('failed', `cannot send ${JSON.stringify(this.name)}: ${problem}`);
      return;
    }
    try {
      this.fd = fs.openSync(this.put.file, 'r');
      const st = fs.fstatSync(this.fd);
      if (!st.isFile()) throw new Error('not a regular file');
      this.size = st.size;
    } catch (err) {
      this.fail('failed', `${this.put.file}: ${(err as Error).message}`);
      return;
    }
    // The server keys a partial by the content's hash, so it comes first.
    const job = this.hashFile(this.fd, this.size, (hashed) => this.progress('hashing', hashed));
    this.progress('hashing', 0);
    job.digest((err, digest) => {
      this.jobEnded();
      if (this.finished) return;
      if (err !== null) {
        this.fail('failed', `${this.put.file}: ${err.message}`);
        return;
      }
      this.sha256 = digest;
      this.connect({ type: 'put', name: this.name, size: this.size, sha256: digest! });
    });
  }

  protected position(): number {
    return this.offset + Math.max(0, this.conn!.bytesWritten - this.bodyStart);
  }

  protected onReply(reply: Reply): void {
    if (reply.type === 'accept' && this.bodyStart === 0) {
      if (reply.offset > this.size) throw new ProtocolError('BAD_MESSAGE', `ACCEPT at ${reply.offset}, past the end (${this.size})`);
      this.offset = reply.offset;
      this.bodyStart = this.conn!.bytesWritten;
      if (reply.offset > 0) {
        this.log(`resuming ${JSON.stringify(this.name)} at byte ${reply.offset} of ${this.size}: the server holds the first ${reply.offset} bytes`);
      }
      this.sentUpTo = reply.offset;
      this.startProgress('sending');
      if (this.options.limitRate) this.sendSlowly();
      else this.sendRange(this.size - reply.offset);
      return;
    }
    if (reply.type === 'stored' && this.bodyStart > 0) {
      if (reply.size !== this.size || !reply.sha256.equals(this.sha256!)) {
        this.fail('mismatch', `the server stored ${reply.size} bytes with sha256 ${reply.sha256.toString('hex')}, not what was sent`);
        return;
      }
      this.progress('sending', this.size);
      this.succeed({
        name: this.name, path: this.put.file, size: this.size, offset: this.offset, sha256: this.sha256!.toString('hex'),
        transferred: this.size - this.offset,
      });
      return;
    }
    throw new ProtocolError('BAD_MESSAGE', `unexpected ${reply.type.toUpperCase()} during a put`);
  }

  protected override lostNote(): string {
    if (this.bodyStart === 0) return '';
    return ` after sending up to byte ${this.position()} of ${this.size}; run the same command again to resume from what the server holds`;
  }

  protected override clearTimers(): void {
    if (this.rateTimer !== null) this.reactor.clearTimer(this.rateTimer);
    this.rateTimer = null;
  }

  private sendRange(length: number, then?: () => void): void {
    const from = this.sentUpTo;
    this.sentUpTo += length;
    this.fileRangeQueued();
    this.conn!.sendFile(this.fd, from, length, (err) => {
      this.fileRangeDone();
      if (err === null) then?.();
    });
  }

  /** --limit-rate: a tenth of the rate every 100 ms, each slice sent before the next is queued. */
  private sendSlowly(): void {
    const slice = Math.max(1, Math.floor(this.options.limitRate! / 10));
    const next = (): void => {
      this.rateTimer = null;
      if (this.finished || this.sentUpTo >= this.size) return;
      this.sendRange(Math.min(slice, this.size - this.sentUpTo), () => {
        if (!this.finished) this.rateTimer = this.reactor.setTimeout(next, 100);
      });
    };
    next();
  }
}

interface PartialMeta {
  version: 1;
  name: string;
  size: number;
  mtimeNs: string;
  sha256: string;
}

class Download extends Transfer {
  private readonly output: string;
  private readonly partialPath: string;
  private readonly metaPath: string;
  private held: { have: number; meta: PartialMeta } | null = null;
  private sha256: Buffer | null = null;
  private written = 0;
  private receiving = false;
  private windowBytes = 0;
  private rateTimer: Timer | null = null;

  constructor(private readonly get: GetOptions, resolve: (r: TransferResult) => void, reject: (e: TransferError) => void) {
    super(get, resolve, reject);
    this.output = get.output ?? get.name;
    this.partialPath = `${this.output}.partial`;
    this.metaPath = `${this.output}.partial.json`;
  }

  start(): void {
    const problem = nameProblem(this.get.name);
    if (problem !== null) {
      this.fail('failed', `cannot ask for ${JSON.stringify(this.get.name)}: ${problem}`);
      return;
    }
    this.held = this.readPartial();
    const meta = this.held?.meta;
    this.connect({
      type: 'get', name: this.get.name, have: this.held?.have ?? 0, size: meta?.size ?? 0,
      mtimeNs: meta ? BigInt(meta.mtimeNs) : 0n, sha256: meta ? Buffer.from(meta.sha256, 'hex') : null,
    });
  }

  protected position(): number {
    return this.written;
  }

  protected onReply(reply: Reply): void {
    if (reply.type !== 'sending' || this.receiving) throw new ProtocolError('BAD_MESSAGE', `unexpected ${reply.type.toUpperCase()} during a get`);
    const have = this.held?.have ?? 0;
    if (reply.offset !== 0 && reply.offset !== have) throw new ProtocolError('BAD_MESSAGE', `SENDING from ${reply.offset}, but ${have} bytes are held`);
    this.receiving = true;
    this.size = reply.size;
    this.offset = reply.offset;
    this.sha256 = reply.sha256;
    try {
      this.fd = fs.openSync(this.partialPath, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
      if (reply.offset === 0) fs.ftruncateSync(this.fd, 0);
      const meta: PartialMeta = {
        version: 1, name: this.get.name, size: reply.size, mtimeNs: reply.mtimeNs.toString(), sha256: reply.sha256.toString('hex'),
      };
      fs.writeFileSync(`${this.metaPath}.tmp`, `${JSON.stringify(meta)}\n`);
      fs.renameSync(`${this.metaPath}.tmp`, this.metaPath);
    } catch (err) {
      this.localFailure(err, this.partialPath);
      return;
    }
    if (reply.offset > 0) {
      this.log(`resuming ${JSON.stringify(this.get.name)} at byte ${reply.offset} of ${reply.size}: the server confirmed the partial is of this version`);
    } else if (have > 0) {
      this.log(`${JSON.stringify(this.get.name)} changed since the partial was made: starting again from 0`);
    }
    this.written = reply.offset;
    this.hashFile(this.fd, reply.offset);
    this.startProgress('receiving');
    if (reply.offset === reply.size) {
      this.verify();
      return;
    }
    this.decoder.passThrough(reply.size - reply.offset, (bytes) => this.receive(bytes));
  }

  protected override lostNote(): string {
    if (!this.receiving) return '';
    return ` after ${this.written} of ${this.size} bytes; ${this.partialPath} is kept: run the same command again to resume`;
  }

  protected override clearTimers(): void {
    if (this.rateTimer !== null) this.reactor.clearTimer(this.rateTimer);
    this.rateTimer = null;
  }

  private receive(bytes: Buffer): void {
    try {
      let done = 0;
      while (done < bytes.length) done += fs.writeSync(this.fd, bytes, done, bytes.length - done, this.written + done);
    } catch (err) {
      this.localFailure(err, `writing ${this.partialPath}`);
      return;
    }
    this.written += bytes.length;
    this.job!.feed(this.written);
    if (this.written === this.size) {
      this.verify();
      return;
    }
    const rate = this.options.limitRate ?? 0;
    if (rate > 0) {
      this.windowBytes += bytes.length;
      if (this.windowBytes >= rate / 10 && this.rateTimer === null) {
        // --limit-rate: stop reading for the rest of this 100 ms.
        this.conn!.pause();
        this.rateTimer = this.reactor.setTimeout(() => {
          this.rateTimer = null;
          this.windowBytes = 0;
          this.conn?.resume();
        }, 100);
      }
    }
  }

  private verify(): void {
    this.progress('verifying', this.size);
    this.job!.digest((err, digest) => {
      this.jobEnded();
      if (this.finished) return;
      if (err !== null) {
        this.fail('failed', `hashing ${this.partialPath}: ${err.message}`);
        return;
      }
      if (!digest!.equals(this.sha256!)) {
        fs.rmSync(this.partialPath, { force: true });
        fs.rmSync(this.metaPath, { force: true });
        this.fail('mismatch', `the ${this.size} bytes received have sha256 ${digest!.toString('hex')}, not the ` +
          `${this.sha256!.toString('hex')} the server announced; the partial was dropped`);
        return;
      }
      try {
        fs.renameSync(this.partialPath, this.output);
        fs.rmSync(this.metaPath, { force: true });
      } catch (err2) {
        this.localFailure(err2, this.output);
        return;
      }
      this.succeed({
        name: this.get.name, path: this.output, size: this.size, offset: this.offset, sha256: digest!.toString('hex'),
        transferred: this.size - this.offset,
      });
    });
  }

  /** The partial held from an earlier attempt, if its metadata says it is of this name. */
  private readPartial(): { have: number; meta: PartialMeta } | null {
    try {
      const meta = JSON.parse(fs.readFileSync(this.metaPath, 'utf8')) as PartialMeta;
      if (meta.version !== 1 || meta.name !== this.get.name || typeof meta.size !== 'number' || !/^[0-9a-f]{64}$/.test(meta.sha256) ||
        !/^\d+$/.test(meta.mtimeNs)) return null;
      const have = fs.statSync(this.partialPath).size;
      return have > 0 && have <= meta.size ? { have, meta } : null;
    } catch {
      return null;
    }
  }
}
