/**
 * One client of the echo server: its descriptor, its output queue, and the interest it has
 * registered. The queue holds copies of what was received (the read buffer is reused), and a
 * partial send keeps its remainder at the head.
 */
import { EVENT_READ, EVENT_WRITE } from '../selectors/selector';

export class Connection {
  private readonly chunks: Buffer[] = [];
  /** Bytes of chunks[0] already sent. */
  private head = 0;
  /** Bytes waiting to be sent. */
  queued = 0;
  /** False while paused by backpressure, and after end-of-stream. */
  reading = true;
  /** No more reading for replies: the peer finished sending, or the server is shutting down. */
  finishing = false;
  /** The peer finished sending (recv returned 0): nothing unread can remain. */
  peerClosed = false;
  /**
   * Our side is shut down for writing and we only read and discard until the peer's end of
   * stream: closing with unread input would send a reset and drop replies still in flight.
   */
  lingering = false;
  /** What is registered with the reactor now. */
  interest = EVENT_READ;
  /** Set once closed: its handler must not touch it again. */
  closed = false;
  /** The closure the reactor calls; made once per connection. */
  handler: (events: number) => void = () => undefined;

  constructor(readonly fd: number) {}

  /** Queues a copy of `bytes[offset, offset + length)`. */
  enqueue(bytes: Uint8Array, offset: number, length: number): void {
    if (length === 0) return;
    this.chunks.push(Buffer.from(bytes.subarray(offset, offset + length)));
    this.queued += length;
  }

  /** The unsent part of the oldest chunk (call only when queued > 0). */
  get headChunk(): Buffer {
    return this.chunks[0];
  }

  get headOffset(): number {
    return this.head;
  }

  /** Records that `sent` bytes of the head chunk went out. */
  consume(sent: number): void {
    this.head += sent;
    this.queued -= sent;
    if (this.head === this.chunks[0].length) {
      this.chunks.shift();
      this.head = 0;
    }
  }

  /** The interest this connection needs now: read unless paused or finishing, write while queued. */
  wantedInterest(): number {
    if (this.lingering) return EVENT_READ;
    return (this.reading && !this.finishing ? EVENT_READ : 0) | (this.queued > 0 ? EVENT_WRITE : 0);
  }

  release(): void {
    this.chunks.length = 0;
    this.queued = 0;
    this.closed = true;
  }
}
