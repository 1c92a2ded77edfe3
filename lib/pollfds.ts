/**
 * A caller-owned array of pollfd entries laid out exactly as the platform's `struct pollfd`
 * (WSAPOLLFD on Windows), so `poll`, `wsapoll` and `selectPollfds` use it in place: a wait
 * neither allocates nor copies. Grows by doubling; slots are addressed by index.
 */
import { constants } from './native';

const STRIDE = constants.POLLFD_SIZE;
const EVENTS_OFFSET = constants.POLLFD_EVENTS_OFFSET;
// Windows' SOCKET is 64 bits wide; its high word is 0 for a socket and all ones for INVALID_SOCKET.
const WIDE_FD = EVENTS_OFFSET === 8;

export class PollFdArray {
  private memory!: ArrayBuffer;
  private words!: Int32Array;
  private halves!: Int16Array;
  private used = 0;

  constructor(capacity = 16) {
    this.allocate(Math.max(1, capacity));
  }

  /** The memory the native wait calls take. */
  get buffer(): ArrayBuffer {
    return this.memory;
  }

  /** How many entries are in use (the `nfds` to pass). */
  get length(): number {
    return this.used;
  }

  get capacity(): number {
    return this.memory.byteLength / STRIDE;
  }

  /** Appends an entry and returns its index. */
  push(fd: number, events: number): number {
    if (this.used === this.capacity) this.grow();
    const index = this.used++;
    this.set(index, fd, events);
    return index;
  }

  set(index: number, fd: number, events: number): void {
    const word = (index * STRIDE) >> 2;
    this.words[word] = fd;
    if (WIDE_FD) this.words[word + 1] = fd < 0 ? -1 : 0;
    const half = (index * STRIDE + EVENTS_OFFSET) >> 1;
    this.halves[half] = events;
    this.halves[half + 1] = 0;
  }

  /** Removes entry `index` by moving the last entry into its place; returns the moved entry's old index (or -1). */
  swapRemove(index: number): number {
    const last = --this.used;
    if (index === last) return -1;
    this.set(index, this.fd(last), this.events(last));
    return last;
  }

  clear(): void {
    this.used = 0;
  }

  fd(index: number): number {
    return this.words[(index * STRIDE) >> 2];
  }

  events(index: number): number {
    return this.halves[(index * STRIDE + EVENTS_OFFSET) >> 1] & 0xffff;
  }

  setEvents(index: number, events: number): void {
    this.halves[(index * STRIDE + EVENTS_OFFSET) >> 1] = events;
  }

  revents(index: number): number {
    return this.halves[((index * STRIDE + EVENTS_OFFSET) >> 1) + 1] & 0xffff;
  }

  private allocate(capacity: number): void {
    const old = this.memory;
    this.memory = new ArrayBuffer(capacity * STRIDE);
    if (old) new Uint8Array(this.memory).set(new Uint8Array(old));
    this.words = new Int32Array(this.memory);
    this.halves = new Int16Array(this.memory);
  }

  private grow(): void {
    this.allocate(this.capacity * 2);
  }
}
