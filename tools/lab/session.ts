/**
 * One variant's run of a scenario: its watcher, its timeline, the descriptors to close, and the
 * summary it ends with. Scenarios use this so that setup, cleanup and the Trace shape live in one place.
 */
import { binding } from '../../lib/native';
import type { Call, Summary, Trace, Variant } from './model';
import { closeAll, openPair, readUntilEagain, type Drained, type LoopbackPair } from './sockets';
import { openWatcher, variantLabel, type Interest, type Readiness, type Watcher } from './mechanisms';
import { Timeline } from './timeline';

/** What a handler did on a wake-up: in words, and how many bytes (or connections) it moved. */
export interface Handled {
  action: string;
  bytes: number | null;
}

export class Session {
  readonly timeline = new Timeline();
  readonly watcher: Watcher;
  /** Reused by every read and write of the run. */
  readonly scratch = Buffer.alloc(64 * 1024);
  registration = '';
  readonly descriptors: Record<string, number> = {};
  private readonly owned: number[] = [];

  constructor(readonly variant: Variant) {
    this.watcher = openWatcher(variant);
  }

  /** Closes `fd` with the session, and names its role in the trace's header. */
  own(fd: number, role: string): number {
    this.owned.push(fd);
    this.descriptors[role] = fd;
    return fd;
  }

  /** Registers `fd` and remembers how, for the trace's header. */
  watch(fd: number, interest: Interest): void {
    this.registration = this.watcher.describe(fd, interest);
    this.watcher.add(fd, interest);
  }

  /** A loopback TCP pair whose `local` end is watched with `interest`; the script drives `peer`. */
  watchedPair(interest: Interest, options: { receiveBuffer?: number; roles?: [string, string] } = {}): LoopbackPair {
    const pair = openPair(options);
    const [watched, peer] = options.roles ?? ['watched', 'peer'];
    this.own(pair.local, watched);
    this.own(pair.peer, peer);
    this.watch(pair.local, interest);
    return pair;
  }

  /**
   * One wait of at most `timeoutMs`. For each descriptor reported, `handle` acts and says what it did;
   * with `rearm`, the descriptor is then re-armed with that interest. Each becomes a wake-up row.
   * Returns how many were reported; on none it records nothing, so the caller can say quiet or stalled.
   */
  react(timeoutMs: number, handle: (r: Readiness) => Handled, rearm?: Interest): number {
    const ready = this.watcher.wait(timeoutMs);
    for (const r of ready) {
      const { action, bytes } = handle(r);
      const rearmed = rearm ? `; ${this.rearm(r.fd, rearm)}` : '';
      this.timeline.wake(r.fd, r.events, action + rearmed, bytes);
    }
    return ready.length;
  }

  /** EPOLL_CTL_MOD with the same interest; the action text says what happened, per mechanism. */
  rearm(fd: number, interest: Interest): string {
    this.watcher.modify(fd, interest);
    const mechanism = this.variant.mechanism;
    const syscall = mechanism === 'io_uring' || mechanism.startsWith('epoll');
    this.record({ op: 'interest', result: syscall ? 1 : 0, note: 're-arm' });
    if (mechanism === 'io_uring') return 're-armed (POLL_REMOVE + a new POLL_ADD)';
    return syscall ? 're-armed (EPOLL_CTL_MOD)' : 're-registered (no-op)';
  }

  /** Records a system call of the handler's; the next timeline row carries it. */
  readonly record = (call: Call): void => this.timeline.call(call);

  /** One recv of at most `length` bytes into the scratch buffer, recorded: bytes, 0 at end of stream, -1 for EAGAIN. */
  recv(fd: number, length = this.scratch.length): number {
    const n = binding.recv(fd, this.scratch, 0, length);
    this.record({ op: 'recv', result: n });
    return n;
  }

  /** Reads until EAGAIN or end of stream (at most `perCall` bytes a call), recording every recv. */
  drain(fd: number, perCall?: number): Drained {
    return readUntilEagain(fd, this.scratch, perCall, this.record);
  }

  finish(summary: Omit<Summary, 'wakeups'> & { wakeups?: number }): Trace {
    return {
      label: variantLabel(this.variant),
      variant: this.variant,
      registration: this.registration,
      descriptors: this.descriptors,
      rows: this.timeline.sorted(),
      summary: { wakeups: this.timeline.wakeups, ...summary },
    };
  }

  close(): void {
    try {
      this.watcher.close();
    } finally {
      closeAll(...this.owned);
    }
  }
}

/** Runs `script` in a fresh session and always closes it. */
export async function inSession(variant: Variant, script: (s: Session) => Trace | Promise<Trace>): Promise<Trace> {
  const session = new Session(variant);
  try {
    return await script(session);
  } finally {
    session.close();
  }
}

/** "recv(1024) until EAGAIN: 11 calls, 10240 bytes" in words. */
export function describeDrain(d: Drained, perCall?: number): string {
  const end = d.eof ? 'end of stream' : 'EAGAIN';
  const call = perCall === undefined ? 'recv' : `recv(${perCall})`;
  return `${call} until ${end}: ${d.calls} call${d.calls === 1 ? '' : 's'}, ${d.bytes} bytes`;
}
