/**
 * Python's `rfile` and `wfile` for a stream request handler: buffered reads (a line, a number of
 * bytes, exactly a number of bytes) and whole writes, over a blocking Socket.
 */
import type { BufferLike } from '../native';
import type { Socket } from '../socket';

const NEWLINE = 0x0a;

export class SocketReader {
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(private readonly sock: Socket, private readonly chunkSize = 64 * 1024) {}

  /**
   * The next line, with its '\n', as Python's readline(limit): at most `limit` bytes (a longer line
   * comes back in pieces, without '\n': check for it); an empty Buffer once the peer has finished.
   * A last line without '\n' is returned as it is.
   */
  readLine(limit = 64 * 1024): Buffer {
    let searchFrom = 0;
    for (;;) {
      const end = this.pending.indexOf(NEWLINE, searchFrom);
      if (end >= 0 && end < limit) return this.take(end + 1);
      if (this.pending.length >= limit) return this.take(limit);
      if (this.ended) return this.take(this.pending.length);
      searchFrom = this.pending.length;
      this.fill();
    }
  }

  /** Up to `size` bytes: fewer only at the end of the stream; an empty Buffer once it has ended. */
  read(size: number): Buffer {
    if (!Number.isInteger(size) || size < 0) throw new RangeError('size must be an integer >= 0');
    while (this.pending.length < size && !this.ended) this.fill();
    return this.take(Math.min(size, this.pending.length));
  }

  /**
   * Exactly `size` bytes. If the stream ends first, throws an Error with code 'ERR_INCOMPLETE_READ'
   * and the bytes that did arrive in `partial` (asyncio's IncompleteReadError).
   */
  readExactly(size: number): Buffer {
    const data = this.read(size);
    if (data.length < size) {
      throw Object.assign(new Error(`The stream ended after ${data.length} of ${size} bytes`), { code: 'ERR_INCOMPLETE_READ', partial: data, expected: size });
    }
    return data;
  }

  private fill(): void {
    const chunk = this.sock.recv(this.chunkSize);
    if (chunk.length === 0) this.ended = true;
    else this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
  }

  private take(n: number): Buffer {
    const out = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    return out;
  }
}

export class SocketWriter {
  constructor(private readonly sock: Socket) {}

  /** Sends all of `data` (waiting for room as the socket's mode allows); returns its length, as Python's wfile. */
  write(data: BufferLike | string): number {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    this.sock.sendAll(bytes);
    return bytes.byteLength;
  }
}
