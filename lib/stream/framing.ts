/**
 * Framing, the answer to the "sticky packet" problem: TCP is a byte stream, so two sends can arrive
 * in one read and one send in several. A decoder turns reads back into the messages that were sent.
 *
 * - LineDecoder: messages end with a delimiter byte ('\n'), at most `maxLineLength` bytes each.
 * - LengthPrefixedDecoder: each message is a u32 big-endian length, then that many bytes, at most
 *   `maxFrameSize`. `writeFrame()` sends one with a gathered write.
 *
 * A message that lies within one read is handed out as a view of that read (no copy); only a
 * message split across reads is assembled in the decoder's own buffer, which never grows past the
 * limit. A frame may announce a counted body that follows it unframed (a file's bytes, as HTTP's
 * Content-Length does): `passThrough(n, onBytes)` hands the next n bytes out as views of the reads,
 * never assembled, whatever their size, and framing resumes after them (both decoders: a line-based
 * protocol with counted bodies, such as HTTP/1.1's Content-Length, is a LineDecoder plus
 * passThrough). `LineDecoder.takeRest()` hands over everything not yet decoded, for a protocol
 * switch. A message over the limit is a FrameError as soon as it is known to be too long, before it
 * is buffered: throw it from onData and the connection alone is destroyed.
 *
 * Views are valid only during the callback (the read buffer and the assembly buffer are reused).
 */
import { Connection } from './connection';

export class FrameError extends Error {
  constructor(readonly code: 'ERR_LINE_TOO_LONG' | 'ERR_FRAME_TOO_LARGE', message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

/** Bytes of the length prefix. */
export const FRAME_HEADER_SIZE = 4;

/** The largest frame the u32 prefix can describe. */
const MAX_U32 = 0xffffffff;

function checkLimit(name: string, value: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) throw new RangeError(`${name} must be an integer from 0 to ${max}; got ${value}`);
  return value;
}

/** Shared by every Assembly that has not needed memory yet: most never do (their messages arrive whole). */
const NO_MEMORY = Buffer.alloc(0);

/** An owned buffer that grows on demand, never past `limit` bytes. */
class Assembly {
  private memory: Buffer = NO_MEMORY;
  length = 0;

  constructor(private readonly limit: number) {}

  append(bytes: Uint8Array, start: number, end: number): void {
    const needed = this.length + (end - start);
    if (needed > this.memory.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.limit, Math.max(needed, this.memory.length * 2, 256)));
      this.memory.copy(grown, 0, 0, this.length);
      this.memory = grown;
    }
    this.memory.set(bytes.subarray(start, end), this.length);
    this.length = needed;
  }

  view(): Buffer {
    return this.memory.subarray(0, this.length);
  }

  clear(): void {
    this.length = 0;
  }
}

/**
 * An unframed body announced by passThrough(): handed to its callback as views of the reads, never
 * assembled or copied, whatever its length. Written once for both decoders.
 */
class CountedBody {
  /** Bytes still to hand out (0: framing is on). */
  left = 0;
  private onBytes: ((bytes: Buffer) => void) | null = null;

  start(length: number, onBytes: (bytes: Buffer) => void): void {
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`length must be an integer >= 0; got ${length}`);
    if (typeof onBytes !== 'function') throw new TypeError('onBytes must be a function');
    this.left = length;
    this.onBytes = length > 0 ? onBytes : null;
  }

  /** Hands out what of `bytes` from `at` belongs to the body; returns where framing resumes. */
  take(bytes: Buffer, at: number): number {
    const end = at + Math.min(this.left, bytes.length - at);
    const onBytes = this.onBytes!;
    this.left -= end - at;
    if (this.left === 0) this.onBytes = null;
    onBytes(bytes.subarray(at, end));
    return end;
  }

  clear(): void {
    this.left = 0;
    this.onBytes = null;
  }
}

export interface LineDecoderOptions {
  /** The longest line accepted, delimiter excluded. */
  maxLineLength: number;
  /** The byte that ends a line. Default '\n'. */
  delimiter?: number;
  /** Also drop a '\r' before the delimiter (CRLF protocols: FTP, SMTP, HTTP). Default false. */
  dropCarriageReturn?: boolean;
  /**
   * A line over the limit is skipped instead of ending the stream: this runs once for it, its
   * bytes are dropped as they come (never buffered) up to its delimiter, and the next line is
   * decoded as usual. A protocol that answers "line too long" and goes on (FTP's 500) wants this.
   * Default: throw a FrameError and stop.
   */
  onOversize?: () => void;
}

export class LineDecoder {
  private readonly max: number;
  private readonly delimiter: number;
  private readonly dropCR: boolean;
  private readonly partial: Assembly;
  private readonly onOversize: (() => void) | undefined;
  private stopped = false;
  /** Skipping the rest of an oversize line, up to its delimiter. */
  private discarding = false;
  private readonly body = new CountedBody();
  /** During push(): the read being decoded, and where decoding resumes after the line being handed out. */
  private current: Buffer | null = null;
  private resumeAt = 0;

  constructor(private readonly onLine: (line: Buffer) => void, options: LineDecoderOptions) {
    this.max = checkLimit('maxLineLength', options.maxLineLength, 2 ** 31 - 2);
    this.delimiter = options.delimiter ?? 0x0a;
    this.dropCR = options.dropCarriageReturn === true;
    this.onOversize = options.onOversize;
    // Room for the longest line plus a '\r' that will be dropped.
    this.partial = new Assembly(this.max + 1);
  }

  /** Bytes of an unfinished line held from earlier reads. */
  get buffered(): number {
    return this.partial.length;
  }

  /** Delivers no more lines (say, the connection is gone). */
  stop(): void {
    this.stopped = true;
    this.partial.clear();
    this.body.clear();
  }

  /** Unframed bytes still expected by passThrough (0 when decoding lines). */
  get passingThrough(): number {
    return this.body.left;
  }

  /**
   * The next `length` bytes of the stream are not lines (a body with a Content-Length, say): hand
   * them to `onBytes` as they arrive, as views of the reads (valid during the call; never copied or
   * assembled, so any length costs no memory), then go back to lines. Call it between lines: from
   * onLine (the line that announced the body), or between pushes.
   */
  passThrough(length: number, onBytes: (bytes: Buffer) => void): void {
    if (this.partial.length > 0 || this.discarding || this.body.left > 0) throw new Error('passThrough() must be called between lines');
    this.body.start(length, onBytes);
  }

  /**
   * Stops decoding and returns, as a copy of its own, everything received and not yet decoded:
   * from onLine, the rest of the read after that line (plus nothing else: a line is never handed out
   * while bytes wait in the decoder); between pushes, the unfinished line held. A protocol switch
   * (an HTTP Upgrade, STARTTLS) hands these bytes to the next protocol, then feeds it the next reads.
   */
  takeRest(): Buffer {
    const rest = this.current !== null ? Buffer.from(this.current.subarray(this.resumeAt)) : Buffer.from(this.partial.view());
    this.stop();
    return rest;
  }

  /** Feeds one read; calls onLine for each complete line. Throws FrameError for a line over the limit. */
  push(data: Uint8Array): void {
    const bytes = asBuffer(data);
    this.current = bytes;
    try {
      this.decode(bytes);
    } finally {
      this.current = null;
    }
  }

  private decode(data: Buffer): void {
    let start = 0;
    while (!this.stopped && start < data.length) {
      if (this.body.left > 0) {
        start = this.body.take(data, start);
        continue;
      }
      const end = data.indexOf(this.delimiter, start);
      this.resumeAt = end + 1;
      if (this.discarding) {
        if (end < 0) return;
        this.discarding = false;
      } else if (end < 0) {
        if (this.fits(data.length - start)) this.partial.append(data, start, data.length);
        else this.oversize(true);
        return;
      } else if (this.partial.length === 0) {
        this.emit(data.subarray(start, end));
      } else if (this.fits(end - start)) {
        this.partial.append(data, start, end);
        const line = this.partial.view();
        this.partial.clear();
        this.emit(line);
      } else {
        this.oversize(false);
      }
      start = end + 1;
    }
  }

  /** Whether `more` bytes still fit the unfinished line: one more than a line may hold while it could be a dropped '\r'. */
  private fits(more: number): boolean {
    return this.partial.length + more <= (this.dropCR ? this.max + 1 : this.max);
  }

  /** A line is over the limit; `unfinished`: its delimiter has not come yet. */
  private oversize(unfinished: boolean): void {
    this.partial.clear();
    if (this.onOversize === undefined) {
      this.stop();
      throw new FrameError('ERR_LINE_TOO_LONG', `A line is longer than ${this.max} bytes`);
    }
    this.discarding = unfinished;
    this.onOversize();
  }

  private emit(line: Buffer): void {
    if (this.dropCR && line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    if (line.length > this.max) {
      this.oversize(false);
      return;
    }
    this.onLine(line);
  }
}

export interface LengthPrefixedOptions {
  /** The largest body accepted, in bytes. */
  maxFrameSize: number;
}

export class LengthPrefixedDecoder {
  private readonly max: number;
  private readonly header = Buffer.alloc(FRAME_HEADER_SIZE);
  private headerFill = 0;
  /** Body length of the frame being assembled, or -1 when none is. */
  private bodyLength = -1;
  private readonly body: Assembly;
  private stopped = false;
  /** The unframed body passThrough() announced. */
  private readonly raw = new CountedBody();

  constructor(private readonly onFrame: (body: Buffer) => void, options: LengthPrefixedOptions) {
    this.max = checkLimit('maxFrameSize', options.maxFrameSize, Math.min(MAX_U32, 2 ** 31 - 1));
    this.body = new Assembly(this.max);
  }

  /** Bytes of an unfinished frame (header included) held from earlier reads. */
  get buffered(): number {
    return this.headerFill + this.body.length;
  }

  stop(): void {
    this.stopped = true;
    this.headerFill = 0;
    this.bodyLength = -1;
    this.body.clear();
    this.raw.clear();
  }

  /** Unframed bytes still expected by passThrough (0 when framing is on). */
  get passingThrough(): number {
    return this.raw.left;
  }

  /**
   * The next `length` bytes of the stream are not frames: hand them to `onBytes` as they arrive, as
   * views of the reads (valid during the call; never copied or assembled, so any length costs no
   * memory), then go back to framing. Call it between frames: from onFrame (the frame that announced
   * the body), or between pushes.
   */
  passThrough(length: number, onBytes: (bytes: Buffer) => void): void {
    if (this.headerFill > 0 || this.bodyLength >= 0 || this.raw.left > 0) {
      throw new Error('passThrough() must be called between frames');
    }
    this.raw.start(length, onBytes);
  }

  /** Feeds one read; calls onFrame for each complete frame. Throws FrameError for a frame over the limit. */
  push(data: Uint8Array): void {
    const bytes = asBuffer(data);
    let at = 0;
    while (!this.stopped && at < bytes.length) {
      if (this.raw.left > 0) {
        at = this.raw.take(bytes, at);
        continue;
      }
      if (this.bodyLength >= 0) {
        // Assembling a body split across reads.
        const take = Math.min(this.bodyLength - this.body.length, bytes.length - at);
        this.body.append(bytes, at, at + take);
        at += take;
        if (this.body.length === this.bodyLength) {
          const frame = this.body.view();
          this.bodyLength = -1;
          this.body.clear();
          this.onFrame(frame);
        }
        continue;
      }
      let length: number;
      if (this.headerFill > 0 || bytes.length - at < FRAME_HEADER_SIZE) {
        // A header split across reads.
        const take = Math.min(FRAME_HEADER_SIZE - this.headerFill, bytes.length - at);
        bytes.copy(this.header, this.headerFill, at, at + take);
        this.headerFill += take;
        at += take;
        if (this.headerFill < FRAME_HEADER_SIZE) return;
        this.headerFill = 0;
        length = this.header.readUInt32BE(0);
      } else {
        length = bytes.readUInt32BE(at);
        at += FRAME_HEADER_SIZE;
      }
      if (length > this.max) {
        this.stop();
        throw new FrameError('ERR_FRAME_TOO_LARGE', `A frame of ${length} bytes is larger than the limit of ${this.max}`);
      }
      if (bytes.length - at >= length) {
        // The whole body is in this read: hand out a view, no copy.
        const frame = bytes.subarray(at, at + length);
        at += length;
        this.onFrame(frame);
      } else {
        this.bodyLength = length;
      }
    }
  }
}

/** The 4-byte big-endian length prefix of a body of `length` bytes. */
export function frameHeader(length: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  header.writeUInt32BE(checkLimit('A frame body length', length, MAX_U32), 0);
  return header;
}

/** Writes one length-prefixed frame; header and body leave in one gathered write. Returns write()'s answer. */
export function writeFrame(conn: Pick<Connection, 'cork' | 'write' | 'uncork'>, body: Uint8Array): boolean {
  conn.cork();
  conn.write(frameHeader(body.length));
  const ok = conn.write(body);
  conn.uncork();
  return ok;
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
