/**
 * The file-transfer protocol's messages: what each one holds, how it is written, and how a frame's
 * body is read back with every field checked. docs/file-transfer.md is the specification; this file
 * is its one implementation, used by the server, the client and the tests.
 *
 * Every message is one length-prefixed frame (lib/stream/framing.ts: a u32 big-endian length, then
 * the body). A body starts with its type byte; integers are big-endian; a name is a u16 length and
 * UTF-8 bytes; a hash is a u8 length and that many bytes (32 for SHA-256; 0 for "none"). A file's
 * bytes are not framed: ACCEPT and SENDING announce exactly how many follow, and they go from file
 * to socket with sendfile and from the read buffer to disk without being assembled.
 *
 * Decoding refuses anything it cannot vouch for — an unknown type, a field cut short, bytes left
 * over, a hash that is not 32 bytes, a size that is negative as a signed 64-bit number or beyond
 * what a double holds exactly, a name that could leave the directory — with a ProtocolError whose
 * code is what the server answers.
 */

/** Message types: the first byte of a frame's body. Requests have the high bit clear. */
export const MessageType = {
  PUT: 0x01,
  GET: 0x02,
  ACCEPT: 0x81,
  STORED: 0x82,
  SENDING: 0x83,
  ERROR: 0xff,
} as const;

/** Why a request failed: the ERROR message's code byte, and what the client exits with. */
export const ErrorCode = {
  /** A frame that is not a valid message here (the connection is closed after the answer). */
  BAD_MESSAGE: 1,
  /** A name that could leave the directory or that the directory reserves. */
  BAD_NAME: 2,
  NOT_FOUND: 3,
  /** Not a regular file inside the directory: a symlink pointing outside it, a directory, a device. */
  FORBIDDEN: 4,
  /** Another client is uploading the same name. */
  BUSY: 5,
  /** Larger than the server's --max-size. */
  TOO_LARGE: 6,
  NO_SPACE: 7,
  /** The bytes received do not have the announced SHA-256. */
  MISMATCH: 8,
  SERVER_ERROR: 9,
  SHUTTING_DOWN: 10,
} as const;
export type ErrorCodeName = keyof typeof ErrorCode;

const CODE_NAMES = new Map<number, ErrorCodeName>(Object.entries(ErrorCode).map(([name, code]) => [code, name as ErrorCodeName]));

/** The largest frame body any message needs (GET with a 255-byte name is 315 bytes; errors are capped). */
export const MAX_MESSAGE_SIZE = 2048;
/** Longest name, in UTF-8 bytes (a file name's limit on Linux). */
export const MAX_NAME_BYTES = 255;
/** Longest error text, in UTF-8 bytes. */
export const MAX_ERROR_TEXT = 1024;
export const SHA256_BYTES = 32;

export interface PutRequest {
  type: 'put';
  name: string;
  size: number;
  sha256: Buffer;
}

export interface GetRequest {
  type: 'get';
  name: string;
  /** Bytes the client already holds (0: none). */
  have: number;
  /** What the client's partial was a copy of: the source's size, mtime and hash when it started (zero/null when have is 0). */
  size: number;
  mtimeNs: bigint;
  sha256: Buffer | null;
}

export interface AcceptReply {
  type: 'accept';
  /** The server holds this many bytes of exactly this (name, size, hash): send the rest, from here. */
  offset: number;
}

export interface StoredReply {
  type: 'stored';
  size: number;
  sha256: Buffer;
}

export interface SendingReply {
  type: 'sending';
  /** The first byte that follows (the client's `have` if its partial matches the source, else 0). */
  offset: number;
  size: number;
  mtimeNs: bigint;
  sha256: Buffer;
}

export interface ErrorReply {
  type: 'error';
  code: ErrorCodeName;
  message: string;
}

export type Request = PutRequest | GetRequest;
export type Reply = AcceptReply | StoredReply | SendingReply | ErrorReply;
export type Message = Request | Reply;

/** A frame that is not a valid message, or a request the server refuses: the code says which. */
export class ProtocolError extends Error {
  constructor(readonly code: ErrorCodeName, message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

// ---- names ----

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Why `name` cannot name a file in the served directory, or null if it can. A name is one path
 * component: 1 to 255 bytes of UTF-8, not '.' or '..', with no separator ('/' or '\'), no NUL and no
 * other control character (they would reach logs and terminals).
 */
export function nameProblem(name: string): string | null {
  const bytes = Buffer.byteLength(name);
  if (bytes === 0) return 'the name is empty';
  if (bytes > MAX_NAME_BYTES) return `the name is ${bytes} bytes long (at most ${MAX_NAME_BYTES})`;
  if (name === '.' || name === '..') return `"${name}" is not a file name`;
  if (name.includes('\0')) return 'the name contains NUL';
  if (name.includes('/') || name.includes('\\')) return 'the name contains a path separator (absolute or nested paths are not served)';
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) return 'the name contains a control character';
  if (!isWellFormed(name)) return 'the name is not valid Unicode (a lone surrogate)';
  return null;
}

function isWellFormed(text: string): boolean {
  // String.prototype.isWellFormed is Node 20+; lone surrogates would be written as U+FFFD.
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text);
}

/** Throws a BAD_NAME ProtocolError if `name` is not a safe name. */
export function checkName(name: string): string {
  const problem = nameProblem(name);
  if (problem !== null) throw new ProtocolError('BAD_NAME', `refused name ${JSON.stringify(name)}: ${problem}`);
  return name;
}

// ---- encoding ----

/** Builds a body field by field. */
class Writer {
  private readonly parts: Buffer[] = [];

  u8(value: number): this {
    this.parts.push(Buffer.from([value]));
    return this;
  }

  u64(value: number | bigint): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64BE(BigInt(value));
    this.parts.push(b);
    return this;
  }

  hash(value: Buffer | null): this {
    const bytes = value ?? Buffer.alloc(0);
    this.u8(bytes.length);
    this.parts.push(bytes);
    return this;
  }

  text(value: string, max: number): this {
    let bytes = Buffer.from(value);
    if (bytes.length > max) bytes = bytes.subarray(0, max);
    const length = Buffer.allocUnsafe(2);
    length.writeUInt16BE(bytes.length);
    this.parts.push(length, bytes);
    return this;
  }

  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function checkSize(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what} must be an integer from 0 to 2^53 - 1; got ${value}`);
}

function checkHash(value: Buffer | null, optional: boolean): void {
  if (value === null && optional) return;
  if (value === null || value.length !== SHA256_BYTES) throw new RangeError(`a SHA-256 is ${SHA256_BYTES} bytes`);
}

/** The frame body of `message` (send it with writeFrame). Refuses what decode would refuse. */
export function encode(message: Message): Buffer {
  switch (message.type) {
    case 'put':
      checkName(message.name);
      checkSize('size', message.size);
      checkHash(message.sha256, false);
      return new Writer().u8(MessageType.PUT).u64(message.size).hash(message.sha256).text(message.name, MAX_NAME_BYTES).done();
    case 'get':
      checkName(message.name);
      checkSize('have', message.have);
      checkSize('size', message.size);
      checkHash(message.sha256, true);
      return new Writer().u8(MessageType.GET).u64(message.have).u64(message.size).u64(message.mtimeNs).hash(message.sha256)
        .text(message.name, MAX_NAME_BYTES).done();
    case 'accept':
      checkSize('offset', message.offset);
      return new Writer().u8(MessageType.ACCEPT).u64(message.offset).done();
    case 'stored':
      checkSize('size', message.size);
      checkHash(message.sha256, false);
      return new Writer().u8(MessageType.STORED).u64(message.size).hash(message.sha256).done();
    case 'sending':
      checkSize('offset', message.offset);
      checkSize('size', message.size);
      checkHash(message.sha256, false);
      return new Writer().u8(MessageType.SENDING).u64(message.offset).u64(message.size).u64(message.mtimeNs).hash(message.sha256).done();
    case 'error':
      return new Writer().u8(MessageType.ERROR).u8(ErrorCode[message.code]).text(message.message, MAX_ERROR_TEXT).done();
  }
}

// ---- decoding ----

/** Reads a body field by field; every shortfall is a BAD_MESSAGE naming the field. */
class Reader {
  private at = 1;

  constructor(private readonly body: Buffer, private readonly what: string) {}

  private need(bytes: number, field: string): void {
    if (this.body.length - this.at < bytes) {
      throw bad(`${this.what}: the frame ends inside ${field} (${this.body.length} bytes)`);
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.body[this.at++];
  }

  /** A u64 that must be a size: not negative as a signed 64-bit number, and exact as a double. */
  size(field: string): number {
    const value = this.u64(field);
    if (value >= 1n << 63n) throw bad(`${this.what}: ${field} is negative (${BigInt.asIntN(64, value)} as a signed 64-bit number)`);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${this.what}: ${field} ${value} is absurd (more than 2^53 - 1)`);
    return Number(value);
  }

  u64(field: string): bigint {
    this.need(8, field);
    const value = this.body.readBigUInt64BE(this.at);
    this.at += 8;
    return value;
  }

  /** A hash: u8 length, then the bytes; 32 (SHA-256), or 0 where `optional`. */
  hash(field: string, optional: boolean): Buffer | null {
    const length = this.u8(`${field} length`);
    if (length === 0 && optional) return null;
    if (length !== SHA256_BYTES) throw bad(`${this.what}: ${field} is ${length} bytes; a SHA-256 is ${SHA256_BYTES}`);
    this.need(length, field);
    const value = Buffer.from(this.body.subarray(this.at, this.at + length));
    this.at += length;
    return value;
  }

  /** u16 length, then UTF-8 (strictly: a malformed sequence is refused, never replaced). */
  text(field: string, max: number, onInvalid: 'BAD_MESSAGE' | 'BAD_NAME'): string {
    this.need(2, `${field} length`);
    const length = this.body.readUInt16BE(this.at);
    this.at += 2;
    if (length > max) throw new ProtocolError(onInvalid, `${this.what}: ${field} is ${length} bytes (at most ${max})`);
    this.need(length, field);
    const bytes = this.body.subarray(this.at, this.at + length);
    this.at += length;
    try {
      return utf8.decode(bytes);
    } catch {
      throw new ProtocolError(onInvalid, `${this.what}: ${field} is not valid UTF-8`);
    }
  }

  end(): void {
    if (this.at !== this.body.length) throw bad(`${this.what}: ${this.body.length - this.at} unexpected bytes after the last field`);
  }
}

function bad(message: string): ProtocolError {
  return new ProtocolError('BAD_MESSAGE', message);
}

/** Reads one frame body. Throws a ProtocolError (BAD_MESSAGE, or BAD_NAME for a refused name). */
export function decode(body: Buffer): Message {
  if (body.length === 0) throw bad('an empty frame (no message type)');
  const type = body[0];
  switch (type) {
    case MessageType.PUT: {
      const r = new Reader(body, 'PUT');
      const size = r.size('size');
      const sha256 = r.hash('sha256', false)!;
      const name = r.text('name', MAX_NAME_BYTES, 'BAD_NAME');
      r.end();
      return { type: 'put', name: checkName(name), size, sha256 };
    }
    case MessageType.GET: {
      const r = new Reader(body, 'GET');
      const have = r.size('have');
      const size = r.size('size');
      const mtimeNs = r.u64('mtime');
      const sha256 = r.hash('sha256', true);
      const name = r.text('name', MAX_NAME_BYTES, 'BAD_NAME');
      r.end();
      if (have > 0 && sha256 === null) throw bad('GET: a partial (have > 0) must say which source it came from (sha256)');
      if (have > size) throw bad(`GET: have (${have}) is more than size (${size})`);
      return { type: 'get', name: checkName(name), have, size, mtimeNs, sha256 };
    }
    case MessageType.ACCEPT: {
      const r = new Reader(body, 'ACCEPT');
      const offset = r.size('offset');
      r.end();
      return { type: 'accept', offset };
    }
    case MessageType.STORED: {
      const r = new Reader(body, 'STORED');
      const size = r.size('size');
      const sha256 = r.hash('sha256', false)!;
      r.end();
      return { type: 'stored', size, sha256 };
    }
    case MessageType.SENDING: {
      const r = new Reader(body, 'SENDING');
      const offset = r.size('offset');
      const size = r.size('size');
      const mtimeNs = r.u64('mtime');
      const sha256 = r.hash('sha256', false)!;
      r.end();
      if (offset > size) throw bad(`SENDING: offset (${offset}) is past the end (${size})`);
      return { type: 'sending', offset, size, mtimeNs, sha256 };
    }
    case MessageType.ERROR: {
      const r = new Reader(body, 'ERROR');
      const number = r.u8('code');
      const message = r.text('message', MAX_ERROR_TEXT, 'BAD_MESSAGE');
      r.end();
      const code = CODE_NAMES.get(number);
      if (code === undefined) throw bad(`ERROR: unknown error code ${number}`);
      return { type: 'error', code, message };
    }
    default:
      throw bad(`unknown message type 0x${type.toString(16).padStart(2, '0')}`);
  }
}

/** True for the messages a client sends. */
export function isRequest(message: Message): message is Request {
  return message.type === 'put' || message.type === 'get';
}
