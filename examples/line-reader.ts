/**
 * Line framing over a stream Socket, shared by the greeting server and client.
 *
 * A line may arrive in several recv chunks, and a chunk may end in the middle of a multi-byte
 * UTF-8 character. Bytes are split at '\n' before anything is decoded, and '\n' never occurs
 * inside a UTF-8 sequence, so every line is decoded whole.
 */
import { Socket } from '../lib/index';

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

export class LineReader {
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;

  /**
   * @param chunkSize bytes asked of each recv (1 makes every character arrive in pieces: tests use it)
   * @param maxLineBytes a peer that sends a longer line without '\n' gets a RangeError, not unbounded memory
   */
  constructor(
    private readonly sock: Socket,
    private readonly chunkSize = 4096,
    private readonly maxLineBytes = 64 * 1024,
  ) {}

  /**
   * The next line without its '\n' (or '\r\n'), waiting per the socket's mode; null once the peer
   * has finished sending. A last line without '\n' is still returned.
   */
  readLine(): string | null {
    let searchFrom = 0;
    for (;;) {
      const end = this.pending.indexOf(NEWLINE, searchFrom);
      if (end >= 0) return this.take(end, end + 1);
      if (this.ended) return this.pending.length > 0 ? this.take(this.pending.length, this.pending.length) : null;
      if (this.pending.length > this.maxLineBytes) {
        throw new RangeError(`A line is longer than ${this.maxLineBytes} bytes`);
      }
      searchFrom = this.pending.length;
      const chunk = this.sock.recv(this.chunkSize);
      if (chunk.length === 0) this.ended = true;
      else this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    }
  }

  private take(end: number, next: number): string {
    const contentEnd = end > 0 && this.pending[end - 1] === CARRIAGE_RETURN ? end - 1 : end;
    const line = this.pending.toString('utf8', 0, contentEnd);
    this.pending = this.pending.subarray(next);
    return line;
  }
}
