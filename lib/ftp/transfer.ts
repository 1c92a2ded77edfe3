/**
 * One transfer over one data connection, and how it ends: the reply its command gets (226 once
 * every byte is where it belongs, 426/451/552 otherwise).
 *
 * - FileSender (RETR): binary files go by `sendFile` (sendfile(2): the file never passes through
 *   JavaScript); TYPE A converts LF to CRLF one 64 KiB chunk at a time, paced by `write()` and
 *   `onDrain`. 226 is sent once our side is finished (`onFinish`: everything in the kernel, end of
 *   stream sent), without waiting for the client to close.
 * - FileReceiver (STOR, APPE): what the connection has is written to the file synchronously
 *   before it is read again. So the connection is never read faster than the disk takes it, and no
 *   more than one read is ever held — backpressure by construction, on a blocking run() as well as
 *   attached (an asynchronous write would need a pause/resume per chunk and Node's loop to be
 *   running). A write into the page cache takes microseconds; when the kernel throttles a writer the
 *   reactor waits with it, as pyftpdlib's loop does. A binary STOR on Linux over a plain data
 *   connection moves the bytes inside the kernel (`recvfile`: splice(2) socket → pipe → file, up to
 *   1 MiB per readable event): one copy instead of two, and no crossing into JavaScript per read
 *   (docs/benchmarks.md, FTP). TYPE A (converted), APPE (O_APPEND, which splice refuses) and TLS
 *   data connections read into a buffer and write it (`fs.writeSync`). At the end the file is closed off the reactor's thread; 226 waits for that
 *   close only on a file system whose close can report a failed write (see closeCanFail).
 * - BufferSender (LIST, NLST, MLSD): a listing made in memory.
 */
import * as fs from 'node:fs';
import { binding } from '../native';
import { Connection } from '../stream/connection';
import type { DataChannel } from './data-channel';
import type { DataConnection } from './tls';

export interface TransferResult {
  code: number;
  text: string;
  /** Bytes on the data connection. */
  bytes: number;
}

export type TransferKind = 'RETR' | 'STOR' | 'APPE' | 'LIST' | 'NLST' | 'MLSD';

const CHUNK = 64 * 1024;
/**
 * recvfile's pipe: 256 KiB per splice in and out. A C receiver writing new files, 10 interleaved
 * rounds: 256 and 512 KiB cost 0.47 and 0.45 ms of CPU per MB (recv + write: 0.51), 1 MiB 0.31 to
 * 1.35, 0.85 in the median (docs/benchmarks.md, FTP).
 */
const PIPE_SIZE = 256 << 10;
/** The most one readable event moves into the file: the reactor's other connections wait meanwhile. */
const RECEIVE_PER_EVENT = 1 << 20;

function reason(err: Error | null): string {
  if (err === null) return '';
  const code = (err as { code?: string }).code;
  return ` (${code ?? err.message})`;
}

export abstract class Transfer {
  protected conn: DataConnection | null = null;
  /** The data channel while the data connection has not come yet. */
  private channel: DataChannel | null = null;
  private ended = false;
  readonly startedAt = Date.now();

  constructor(readonly kind: TransferKind, readonly path: string, private readonly onEnd: (result: TransferResult) => void) {}

  /** Bytes moved so far on the data connection. */
  get bytes(): number {
    if (this.conn === null) return 0;
    return this.kind === 'STOR' || this.kind === 'APPE' ? this.conn.bytesRead : this.conn.bytesWritten;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** The data connection, once it came (after the end it may still be closing). */
  get connection(): DataConnection | null {
    return this.conn;
  }

  /** Waits on `channel` for the data connection, then moves the bytes; ending first closes the channel. */
  waitFor(channel: DataChannel): void {
    this.channel = channel;
    channel.open((conn) => {
      this.channel = null;
      this.start(conn);
    }, (failure) => {
      this.channel = null;
      this.fail(failure.code, failure.text);
    });
  }

  /** The data connection is here: move the bytes. */
  start(conn: DataConnection): void {
    if (this.ended) {
      conn.destroy();
      return;
    }
    this.conn = conn;
    conn.onClose = (err: Error | null) => {
      if (!this.ended) {
        const truncated = (err as { code?: string } | null)?.code === 'ERR_FILE_TRUNCATED';
        this.finish(truncated ? 451 : 426, truncated ? 'The file changed during the transfer; aborted.'
          : `Data connection closed; transfer aborted${reason(err)}.`);
      }
    };
    this.begin(conn);
  }

  /** Ends it now with `code` (no data connection came: 425; ABOR: 426): the data connection is dropped. */
  fail(code: number, text: string): void {
    if (this.ended) return;
    this.finish(code, text);
    this.conn?.destroy();
  }

  /** What STAT says about it. */
  status(): string {
    return `${this.kind} ${this.path}: ${this.bytes} bytes so far${this.conn === null ? ', waiting for the data connection' : ''}.`;
  }

  protected abstract begin(conn: DataConnection): void;

  /** Releases what the transfer holds (its file). Called once, when it ends. */
  protected release(): void {}

  protected finish(code: number, text: string): void {
    if (this.ended) return;
    this.ended = true;
    const bytes = this.bytes;
    this.channel?.close();
    this.channel = null;
    this.release();
    this.onEnd({ code, text, bytes });
  }

  /** Our side is done sending: answer now, then close (reading until the client's end, bounded by linger). */
  protected sendComplete(): void {
    this.finish(226, 'Transfer complete.');
    this.conn?.close();
  }
}

/** RETR: a file (from `offset`, `length` bytes) to the client. */
export class FileSender extends Transfer {
  private fileOpen = true;
  private position: number;
  private lastWasCR = false;

  constructor(path: string, private readonly fd: number, offset: number, private readonly length: number,
    private readonly ascii: boolean, onEnd: (result: TransferResult) => void) {
    super('RETR', path, onEnd);
    this.position = offset;
  }

  protected begin(conn: DataConnection): void {
    conn.onData = () => undefined; // A client has nothing to say on a download.
    conn.onFinish = () => this.sendComplete();
    conn.resume(); // Reading notices a client that leaves early.
    if (!this.ascii) {
      conn.sendFile(this.fd, this.position, this.length, (err) => {
        if (err === null) conn.end();
      });
      return;
    }
    conn.onDrain = () => this.pump();
    this.pump();
  }

  protected override release(): void {
    if (!this.fileOpen) return;
    this.fileOpen = false;
    fs.closeSync(this.fd);
  }

  /** TYPE A: reads, converts and writes until the connection says stop or the file ends. */
  private pump(): void {
    const conn = this.conn!;
    const chunk = Buffer.allocUnsafe(CHUNK);
    while (!conn.closed && this.fileOpen) {
      let n: number;
      try {
        n = fs.readSync(this.fd, chunk, 0, CHUNK, this.position);
      } catch (err) {
        this.fail(451, `Local error reading the file${reason(err as Error)}.`);
        return;
      }
      if (n === 0) {
        conn.end();
        return;
      }
      this.position += n;
      if (!conn.write(this.toNetworkAscii(chunk.subarray(0, n)))) return;
    }
  }

  /** LF → CRLF, except where the LF already follows a CR (also across chunks). */
  private toNetworkAscii(data: Buffer): Buffer {
    let extra = 0;
    for (let i = 0; i < data.length; i++) {
      if (data[i] === 0x0a && !(i === 0 ? this.lastWasCR : data[i - 1] === 0x0d)) extra++;
    }
    const wasCR = this.lastWasCR;
    this.lastWasCR = data[data.length - 1] === 0x0d;
    if (extra === 0) return Buffer.from(data);
    const out = Buffer.allocUnsafe(data.length + extra);
    let o = 0;
    for (let i = 0; i < data.length; i++) {
      if (data[i] === 0x0a && !(i === 0 ? wasCR : data[i - 1] === 0x0d)) out[o++] = 0x0d;
      out[o++] = data[i];
    }
    return out;
  }
}

/** STOR and APPE: the client's bytes into a file, from `position` (null: append). */
export class FileReceiver extends Transfer {
  private fileOpen = true;
  /** TYPE A: a CR at the end of the last read, held until we see whether an LF follows. */
  private pendingCR = false;
  /** recvfile's pipe while a binary STOR runs on Linux. */
  private pipe: [number, number] | null = null;

  constructor(kind: 'STOR' | 'APPE', path: string, private readonly fd: number, private position: number | null,
    private readonly ascii: boolean, onEnd: (result: TransferResult) => void) {
    super(kind, path, onEnd);
  }

  protected begin(conn: DataConnection): void {
    // Only a plain connection: on a TLS one the socket carries ciphertext.
    const plain = conn instanceof Connection;
    const pipe = plain && this.position !== null && !this.ascii ? openPipe() : null;
    if (plain && pipe !== null) {
      this.pipe = pipe;
      conn.reader = (socket) => this.receive(socket, pipe);
    } else {
      conn.onData = (data) => this.store(data);
    }
    conn.onEnd = () => {
      if (this.pendingCR) this.writeAll(Buffer.from([0x0d]));
      if (this.isEnded) return;
      conn.onClose = null; // Every byte is in: the data connection may go while the file closes.
      conn.end();
      if (!closeCanFail(this.fd)) {
        this.closeFile(() => undefined);
        this.finish(226, 'Transfer complete.');
        return;
      }
      this.closeFile((err) => {
        if (err === null) this.finish(226, 'Transfer complete.');
        else this.fail(451, `Local error closing the file${reason(err)}.`);
      });
    };
    conn.resume();
  }

  protected override release(): void {
    if (!this.fileOpen) return;
    this.stopReceiving();
    fs.closeSync(this.fd);
  }

  /**
   * Every byte is in: the file is closed, then `done`. Off the reactor's thread where Node's loop
   * runs: closing a file that was truncated to 0 and written again starts its writeback there and
   * then (ext4's auto_da_alloc), 60–300 ms for 1 GiB, which every other session would wait out.
   */
  private closeFile(done: (err: Error | null) => void): void {
    this.stopReceiving();
    if (this.conn!.reactor.isAttached) {
      fs.close(this.fd, done);
      return;
    }
    let failure: Error | null = null;
    try {
      fs.closeSync(this.fd);
    } catch (err) {
      failure = err as Error;
    }
    done(failure);
  }

  /** No more reading into the file: the reader is gone (no splice into a closed or reused descriptor), the pipe closed. */
  private stopReceiving(): void {
    this.fileOpen = false;
    if (this.conn instanceof Connection) this.conn.reader = null;
    if (this.pipe !== null) {
      fs.closeSync(this.pipe[0]);
      fs.closeSync(this.pipe[1]);
      this.pipe = null;
    }
  }

  /** A binary STOR on Linux: the socket's bytes into the file inside the kernel. */
  private receive(socket: number, pipe: [number, number]): number {
    try {
      const n = binding.recvfile!(this.fd, socket, this.position!, RECEIVE_PER_EVENT, pipe);
      if (n > 0) this.position! += n;
      return n;
    } catch (err) {
      if ((err as { fd?: number }).fd !== this.fd) throw err; // The connection failed: onClose answers 426.
      this.writeFailed(err as Error);
      return -1;
    }
  }

  private store(data: Buffer): void {
    this.writeAll(this.ascii ? this.fromNetworkAscii(data) : data);
  }

  /** One read, written whole before the next read: the backpressure (see the file's comment). */
  private writeAll(data: Buffer): void {
    let done = 0;
    try {
      while (done < data.length) {
        const n = fs.writeSync(this.fd, data, done, data.length - done, this.position);
        done += n;
        if (this.position !== null) this.position += n;
      }
    } catch (err) {
      this.writeFailed(err as Error);
    }
  }

  /** The file took no more: 552 when it was for want of space, 451 otherwise. */
  private writeFailed(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code;
    const full = code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG';
    this.fail(full ? 552 : 451, full ? `Requested file action aborted: insufficient storage space${reason(err)}.`
      : `Local error writing the file${reason(err)}.`);
  }

  /** CRLF → LF (a CR alone stays). */
  private fromNetworkAscii(data: Buffer): Buffer {
    const out = Buffer.allocUnsafe(data.length + 1);
    let o = 0;
    let i = 0;
    if (this.pendingCR) {
      if (data[0] !== 0x0a) out[o++] = 0x0d;
      this.pendingCR = false;
    }
    for (; i < data.length; i++) {
      const byte = data[i];
      if (byte === 0x0d) {
        if (i === data.length - 1) {
          this.pendingCR = true;
          continue;
        }
        if (data[i + 1] === 0x0a) continue;
      }
      out[o++] = byte;
    }
    return out.subarray(0, o);
  }
}

/** LIST, NLST, MLSD: a listing made in memory. */
export class BufferSender extends Transfer {
  constructor(kind: 'LIST' | 'NLST' | 'MLSD', path: string, private readonly body: Buffer, onEnd: (result: TransferResult) => void) {
    super(kind, path, onEnd);
  }

  protected begin(conn: DataConnection): void {
    conn.onData = () => undefined;
    conn.onFinish = () => this.sendComplete();
    conn.resume();
    conn.end(this.body);
  }
}

/**
 * File systems whose close(2) reports nothing — they have no flush operation; a write that fails
 * later shows at fsync — so 226 need not wait for the close: ext2/3/4, XFS, tmpfs (statfs f_type).
 * vsftpd never waits; pyftpdlib and ProFTPD always do, which is right where close can fail (NFS,
 * FUSE and SMB report a failed write there): iomux waits on those and on any it does not know.
 */
const CLOSE_REPORTS_NOTHING = new Set([0xef53, 0x58465342, 0x01021994]);

function closeCanFail(fd: number): boolean {
  if (process.platform !== 'linux') return true;
  try {
    return !CLOSE_REPORTS_NOTHING.has(fs.statfsSync(`/proc/self/fd/${fd}`).type);
  } catch {
    return true;
  }
}

/** A pipe for recvfile, or null where there is none (not Linux) or none can be made now (EMFILE): recv then. */
function openPipe(): [number, number] | null {
  if (binding.recvfile === undefined || binding.pipe === undefined) return null;
  try {
    return binding.pipe(PIPE_SIZE);
  } catch {
    return null;
  }
}
