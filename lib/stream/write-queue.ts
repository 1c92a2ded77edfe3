/**
 * A connection's output queue: byte chunks and file ranges, in the order they were written, sent
 * with gathered writes (one `writev` for a run of chunks: a reply and its suffix, or a frame header
 * and its body, leave in one system call and one segment) and `sendfile` for files.
 *
 * Chunks may be *borrowed* (a view of memory the caller will reuse, such as the shared read buffer)
 * for as long as the connection is corked; `adoptBorrowed()` copies whatever of them is still queued
 * when the cork ends, so the zero-copy path costs nothing when the kernel takes everything at once.
 *
 * The array of items grows to about twice the longest queue a connection ever had and is then reused:
 * head and tail indices move, and when the tail reaches the end of the array while the sent items
 * before the head are at least as many as those queued, the queued ones move down to the start
 * (a compacting array, so that `writev` still sees one contiguous run). A producer that keeps the
 * queue between its low and high water marks, never empty, therefore reuses the same slots forever
 * instead of growing the array by one per write. The array is never truncated (that would drop V8's
 * backing store).
 *
 * A file range's `done` is not called from here: the queue hands it to `settle`, which the
 * connection uses to deliver it from the reactor's turn (never inside the caller's own call).
 */
import * as fs from 'node:fs';
import { binding } from '../native';

const WOULD_BLOCK = -1;
/** How many chunks one gathered write takes (IOV_MAX is 1024 on Linux; more gains nothing). */
const MAX_GATHER = 64;
/** One sendfile call at most (the kernel's own cap is 0x7ffff000). */
const MAX_SENDFILE = 0x7ffff000;
/**
 * What each sendfile(2) takes at most while a flush fills the socket: a few hundred KiB per call
 * beat one call that fills a multi-megabyte send buffer, in bytes per second and CPU per byte on
 * both ends (docs/benchmarks.md, FTP: why). The binding loops over them in one crossing.
 */
const SENDFILE_CHUNK = 256 * 1024;

/** A range of an open file, sent by sendfile(2) where the platform has it, else read + send. */
export class FileSegment {
  constructor(
    readonly fd: number,
    /** The next byte to send. */
    public position: number,
    /** One past the last byte to send. */
    readonly end: number,
    readonly done: ((err: Error | null) => void) | null,
  ) {}

  get remaining(): number {
    return this.end - this.position;
  }
}

type Item = Uint8Array | FileSegment;

/** Where a file range's completion goes: `done` with null once sent, or with the error that dropped it. */
export type Settle = (done: (err: Error | null) => void, err: Error | null) => void;

/** What a flush left behind. */
export const enum FlushResult {
  /** Everything went out. */
  Empty,
  /** The socket's buffer is full: wait for a writable event. */
  Blocked,
}

/** A file that ended before the range sendFile() was asked for. */
export class FileTruncatedError extends Error {
  readonly code = 'ERR_FILE_TRUNCATED';
  constructor(position: number, end: number) {
    super(`sendFile: the file ended at byte ${position}, before the ${end} bytes asked for`);
  }
}

// The read + send fallback reads through this, one chunk at a time (no file is ever buffered whole).
let fallbackScratch: Buffer | null = null;

export class WriteQueue {
  private items: (Item | undefined)[] = [];
  private head = 0;
  private tail = 0;
  /** Bytes of items[head] already sent (byte chunks only). */
  private headOffset = 0;
  /** Index from which items are borrowed (tail when none is). */
  private borrowedFrom = 0;
  /** Bytes of chunks queued (files not counted: they take no memory). */
  bytes = 0;
  /** Total bytes handed to the kernel. */
  sent = 0;

  constructor(private readonly settle: Settle) {}

  /** Slots of item storage (for tests: it follows the longest queue, not the number of writes). */
  get storageLength(): number {
    return this.items.length;
  }

  get isEmpty(): boolean {
    return this.head === this.tail;
  }

  /**
   * Queues `chunk`; a borrowed one must be adopted (copied) before its memory is reused. Adoption
   * copies every chunk from the first borrowed one on (an owned chunk after it is copied needlessly,
   * which costs a copy on a slow path and saves a flag per item).
   */
  pushBytes(chunk: Uint8Array, borrowed: boolean): void {
    if (chunk.length === 0) return;
    if (this.tail === this.items.length) this.compact();
    if (!borrowed && this.borrowedFrom === this.tail) this.borrowedFrom++;
    this.items[this.tail++] = chunk;
    this.bytes += chunk.length;
  }

  pushFile(segment: FileSegment): void {
    if (this.tail === this.items.length) this.compact();
    if (this.borrowedFrom === this.tail) this.borrowedFrom++;
    this.items[this.tail++] = segment;
  }

  /** Copies every borrowed chunk still queued, so the caller may reuse their memory. */
  adoptBorrowed(): void {
    for (let i = Math.max(this.borrowedFrom, this.head); i < this.tail; i++) {
      const item = this.items[i];
      if (!(item instanceof Uint8Array)) continue;
      if (i === this.head && this.headOffset > 0) {
        // Only the unsent part needs to survive.
        this.items[i] = Buffer.from(item.subarray(this.headOffset));
        this.headOffset = 0;
      } else {
        this.items[i] = Buffer.from(item);
      }
    }
    this.borrowedFrom = this.tail;
  }

  /**
   * Sends from the head until the queue is empty or the socket would block. Throws the system
   * error of a failing send (the connection is then beyond repair). A file range's `done` runs as
   * soon as it has gone out; it may write more, or destroy the connection (which clears the queue).
   */
  flush(fd: number): FlushResult {
    while (this.head < this.tail) {
      const item = this.items[this.head]!;
      if (item instanceof FileSegment) {
        if (!this.sendFileSome(fd, item)) return FlushResult.Blocked;
        this.popHead();
        if (item.done !== null) this.settle(item.done, null);
        continue;
      }
      const run = this.byteRunLength();
      const n = run === 1
        ? binding.send(fd, item, this.headOffset, item.length - this.headOffset)
        : binding.writev(fd, this.items as Uint8Array[], this.head, run, this.headOffset);
      if (n === WOULD_BLOCK) return FlushResult.Blocked;
      this.consume(n);
    }
    this.reset();
    return FlushResult.Empty;
  }

  /** Drops everything; file ranges are told `err`. */
  clear(err: Error): void {
    const pending: FileSegment[] = [];
    for (let i = this.head; i < this.tail; i++) {
      const item = this.items[i];
      if (item instanceof FileSegment && item.done) pending.push(item);
      this.items[i] = undefined;
    }
    this.head = this.tail = this.borrowedFrom = 0;
    this.headOffset = 0;
    this.bytes = 0;
    for (const segment of pending) this.settle(segment.done!, err);
  }

  /**
   * The array is full: if the sent slots before the head are at least as many as the queued ones,
   * move the queued ones to the start instead of letting the array grow (amortised O(1): each move
   * of k items follows at least k pops).
   */
  private compact(): void {
    const head = this.head;
    const live = this.tail - head;
    if (head === 0 || head < live) return;
    const items = this.items;
    items.copyWithin(0, head, this.tail);
    items.fill(undefined, live, this.tail);
    this.head = 0;
    this.tail = live;
    this.borrowedFrom = Math.max(0, this.borrowedFrom - head);
  }

  /** How many byte chunks, from the head on, one gathered write can take. */
  private byteRunLength(): number {
    let end = this.head + 1;
    const limit = Math.min(this.tail, this.head + MAX_GATHER);
    while (end < limit && this.items[end] instanceof Uint8Array) end++;
    return end - this.head;
  }

  /** Records `n` bytes sent from the head's run of chunks. */
  private consume(n: number): void {
    this.sent += n;
    this.bytes -= n;
    while (n > 0) {
      const chunk = this.items[this.head] as Uint8Array;
      const left = chunk.length - this.headOffset;
      if (n < left) {
        this.headOffset += n;
        return;
      }
      n -= left;
      this.popHead();
    }
  }

  private popHead(): void {
    this.items[this.head++] = undefined;
    this.headOffset = 0;
    if (this.borrowedFrom < this.head) this.borrowedFrom = this.head;
  }

  private reset(): void {
    this.head = this.tail = this.borrowedFrom = 0;
    this.headOffset = 0;
  }

  /** Sends what the socket takes of `segment`; true once all of it is sent. */
  private sendFileSome(fd: number, segment: FileSegment): boolean {
    while (segment.position < segment.end) {
      const want = Math.min(segment.remaining, MAX_SENDFILE);
      const n = binding.sendfile ? binding.sendfile(fd, segment.fd, segment.position, want, SENDFILE_CHUNK) : readAndSend(fd, segment, want);
      if (n === WOULD_BLOCK) return false;
      if (n === 0) throw new FileTruncatedError(segment.position, segment.end);
      segment.position += n;
      this.sent += n;
    }
    return true;
  }
}

/** Where there is no sendfile: read one chunk at the segment's position and send what the socket takes. */
function readAndSend(fd: number, segment: FileSegment, want: number): number {
  fallbackScratch ??= Buffer.allocUnsafe(64 * 1024);
  const length = Math.min(want, fallbackScratch.length);
  const read = fs.readSync(segment.fd, fallbackScratch, 0, length, segment.position);
  if (read === 0) return 0;
  return binding.send(fd, fallbackScratch, 0, read);
}
