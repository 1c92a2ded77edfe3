/**
 * The timeline recorder: one row per wake-up, scripted step or empty wait, stamped with the time since
 * the trace began. The clock is the monotonic one every thread of the process shares, so rows recorded
 * by worker threads merge into the same timeline.
 */
import type { Call, EventName, Row } from './model';

export class Timeline {
  readonly rows: Row[] = [];
  /** Calls made since the last row: the next row carries them (a wake-up's reads, a re-arm before a step). */
  private pending: Call[] = [];

  constructor(readonly origin: bigint = process.hrtime.bigint()) {}

  /** Milliseconds since the origin, to a hundredth. */
  elapsed(): number {
    return Math.round(Number(process.hrtime.bigint() - this.origin) / 1e4) / 100;
  }

  get wakeups(): number {
    return this.rows.filter((row) => row.kind === 'wake').length;
  }

  /** The handler made a system call; the next row records it. */
  call(call: Call): void {
    this.pending.push(call);
  }

  /** A wait reported `events` on `fd` and the handler did `action`. */
  wake(fd: number, events: EventName[], action: string, bytes: number | null = null): Row {
    return this.push({ kind: 'wake', t: this.elapsed(), fd, events, action, bytes });
  }

  /** The script (not the handler) did something: the peer sent, a client connected. `mark` labels it in the picture. */
  step(action: string, fd: number | null = null, bytes: number | null = null, mark?: string): Row {
    return this.push({ kind: 'step', t: this.elapsed(), fd, events: [], action, bytes, ...(mark ? { mark } : {}) });
  }

  /** A bounded wait reported nothing, and nothing was expected to remain (`left`: what was still unread). */
  quiet(waitedMs: number, detail = '', left?: number): Row {
    const action = `nothing reported within ${waitedMs} ms${detail ? ` (${detail})` : ''}`;
    return this.push({ kind: 'quiet', t: this.elapsed(), fd: null, events: [], action, bytes: null, ...(left ? { left } : {}) });
  }

  /** A bounded wait reported nothing while work remained (`left` bytes or connections): the trace ends here. */
  stall(waitedMs: number, what: string, left?: number): Row {
    const action = `nothing reported within ${waitedMs} ms: STALLED with ${what}`;
    return this.push({ kind: 'stall', t: this.elapsed(), fd: null, events: [], action, bytes: null, ...(left ? { left } : {}) });
  }

  /** A row recorded elsewhere (a worker thread) against the same origin, or here with the calls made since the last. */
  push(row: Row): Row {
    if (this.pending.length) {
      row.calls = [...(row.calls ?? []), ...this.pending];
      this.pending = [];
    }
    this.rows.push(row);
    return row;
  }

  /** Rows in time order (worker rows arrive in batches). */
  sorted(): Row[] {
    return [...this.rows].sort((a, b) => a.t - b.t);
  }
}
