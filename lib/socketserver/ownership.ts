/**
 * Who may close a descriptor handed to a worker thread. A descriptor is a plain number, valid in
 * every thread, and a closed number is reused by the next socket or file any thread opens — so
 * exactly one thread may close it, and nobody may touch it after. One slot per worker, in shared
 * memory, says who that is:
 *
 *   IDLE ──assign (main)──▶ OWNED ──release (worker)──▶ CLOSING ──▶ IDLE      the worker closes it
 *                             └────reclaim (main)────▶ RECLAIMED ──▶ IDLE     the main thread closes it
 *
 * The two transitions out of OWNED are compare-and-swaps, so the worker finishing its handler and
 * the main thread giving up on it (grace period over, worker dead) cannot both win: a reclaimed
 * descriptor is never closed by the worker, a released one never touched by the main thread.
 */

export const IDLE = 0;
export const OWNED = 1;
export const CLOSING = 2;
export const RECLAIMED = 3;

const STATE = 0;
const FD = 1;

export class OwnershipSlot {
  readonly words: Int32Array;

  constructor(shared: SharedArrayBuffer = new SharedArrayBuffer(8)) {
    this.words = new Int32Array(shared);
  }

  get buffer(): SharedArrayBuffer {
    return this.words.buffer as SharedArrayBuffer;
  }

  get state(): number {
    return Atomics.load(this.words, STATE);
  }

  get fd(): number {
    return Atomics.load(this.words, FD);
  }

  /** Main thread, before the hand-off message: from now on the worker owns `fd`. */
  assign(fd: number): void {
    if (Atomics.load(this.words, STATE) !== IDLE) throw new Error('This worker already holds a descriptor');
    Atomics.store(this.words, FD, fd);
    Atomics.store(this.words, STATE, OWNED);
  }

  /**
   * Worker, when its handler is done: true if it still owns the descriptor — it must close it, then
   * call closed() — false if the main thread reclaimed it (leave it alone).
   */
  release(): boolean {
    return Atomics.compareExchange(this.words, STATE, OWNED, CLOSING) === OWNED;
  }

  /** Worker, after closing a released descriptor. */
  closed(): void {
    Atomics.store(this.words, STATE, IDLE);
  }

  /**
   * Main thread: takes the descriptor back (the worker is dead, or overdue); returns it, or -1 if
   * the worker released it first. A reclaimed descriptor is the main thread's to close: it calls
   * reclaimedClosed() after, once no code of the worker can still use the number.
   */
  reclaim(): number {
    const fd = Atomics.load(this.words, FD);
    return Atomics.compareExchange(this.words, STATE, OWNED, RECLAIMED) === OWNED ? fd : -1;
  }

  reclaimedClosed(): void {
    Atomics.compareExchange(this.words, STATE, RECLAIMED, IDLE);
  }
}
