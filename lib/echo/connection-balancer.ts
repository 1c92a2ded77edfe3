/**
 * Exact connection balance between reactor threads that share one listening socket.
 *
 * EPOLLEXCLUSIVE stops the thundering herd, but it does not spread connections: the kernel wakes the
 * first waiting thread it finds, so one thread can take most of a burst (`iomux trace
 * thundering-herd` shows it). Accepted descriptors are plain numbers, valid in every thread, so the
 * thread that accepted a connection can give it to the thread with the fewest open connections —
 * Envoy's "exact" connection balance. Ownership passes with the number: once handed over, only the
 * receiving thread closes it.
 *
 * Shared memory (one SharedArrayBuffer for all threads), in Int32 words:
 *   [0 .. threads-1]   open connections of each thread (counted when a thread is chosen, not when it adopts)
 *   then, per thread, an inbox: [lock, count (-1 once closed), fd 0 .. fd capacity-1]
 * The lock is held for a few stores; a thread that finds an inbox full or closed serves the
 * connection itself. Costs fall on accepting only, never on a message.
 */

const UNLOCKED = 0;
const LOCKED = 1;
const CLOSED = -1;
const DEFAULT_CAPACITY = 1024;

export class ConnectionBalancer {
  /** Connections this thread accepted and gave to another. */
  handedOff = 0;
  /** Connections other threads gave to this one. */
  handedIn = 0;
  private readonly words: Int32Array;
  private readonly capacity: number;

  /** The shared memory for `threads` threads, each inbox holding up to `capacity` descriptors. */
  static allocate(threads: number, capacity = DEFAULT_CAPACITY): SharedArrayBuffer {
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError('threads must be an integer >= 1');
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be an integer >= 1');
    return new SharedArrayBuffer(4 * (threads + threads * (2 + capacity)));
  }

  /**
   * This thread's view: it is thread `self` of `threads`; `wake(thread)` makes that thread call
   * takeHandedIn() soon (its Waker).
   */
  constructor(shared: SharedArrayBuffer, readonly threads: number, readonly self: number,
    private readonly wake: (thread: number) => void) {
    this.words = new Int32Array(shared);
    this.capacity = this.words.length / threads - 2 - 1;
    if (!Number.isInteger(this.capacity) || this.capacity < 1) throw new RangeError('the shared memory does not fit this many threads');
    if (!Number.isInteger(self) || self < 0 || self >= threads) throw new RangeError(`self must be a thread index from 0 to ${threads - 1}`);
  }

  /** Open connections of `thread`, as the balancer counts them. */
  load(thread: number): number {
    return Atomics.load(this.words, thread);
  }

  /**
   * Where an accepted descriptor goes: true if it was handed to a thread with fewer open
   * connections (it is that thread's now), false if this thread keeps it (and it is counted here).
   */
  place(fd: number): boolean {
    let target = this.self;
    let least = Atomics.load(this.words, this.self);
    for (let t = 0; t < this.threads; t++) {
      const load = Atomics.load(this.words, t);
      if (load < least) {
        least = load;
        target = t;
      }
    }
    if (target !== this.self && this.push(target, fd)) {
      Atomics.add(this.words, target, 1);
      this.handedOff++;
      this.wake(target);
      return true;
    }
    Atomics.add(this.words, this.self, 1);
    return false;
  }

  /** The descriptors other threads handed to this one since the last call; they are this thread's to serve and close. */
  takeHandedIn(): number[] {
    const base = this.inbox(this.self);
    this.lock(base);
    const count = Math.max(0, this.words[base + 1]);
    const fds = Array.from(this.words.subarray(base + 2, base + 2 + count));
    if (this.words[base + 1] !== CLOSED) this.words[base + 1] = 0;
    this.unlock(base);
    this.handedIn += fds.length;
    return fds;
  }

  /** One of this thread's connections closed. */
  released(): void {
    Atomics.sub(this.words, this.self, 1);
  }

  /**
   * This thread takes no more connections: its inbox refuses new ones, and what was still in it
   * is returned (the caller closes those descriptors: nobody else will).
   */
  close(): number[] {
    const base = this.inbox(this.self);
    this.lock(base);
    const count = Math.max(0, this.words[base + 1]);
    const left = Array.from(this.words.subarray(base + 2, base + 2 + count));
    this.words[base + 1] = CLOSED;
    this.unlock(base);
    Atomics.sub(this.words, this.self, left.length);
    return left;
  }

  private inbox(thread: number): number {
    return this.threads + thread * (2 + this.capacity);
  }

  private push(thread: number, fd: number): boolean {
    const base = this.inbox(thread);
    this.lock(base);
    const count = this.words[base + 1];
    const fits = count !== CLOSED && count < this.capacity;
    if (fits) {
      this.words[base + 2 + count] = fd;
      this.words[base + 1] = count + 1;
    }
    this.unlock(base);
    return fits;
  }

  private lock(base: number): void {
    // Held for a few stores, so a short spin usually wins; a holder preempted by the scheduler is
    // waited for instead of spun on.
    for (let spins = 0; Atomics.compareExchange(this.words, base, UNLOCKED, LOCKED) !== UNLOCKED; spins++) {
      if (spins >= 100) Atomics.wait(this.words, base, LOCKED, 1);
    }
  }

  private unlock(base: number): void {
    Atomics.store(this.words, base, UNLOCKED);
    Atomics.notify(this.words, base, 1);
  }
}
