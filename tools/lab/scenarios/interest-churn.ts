/**
 * interest-churn: the seed's strict read/write separation, priced per message. A read only queues
 * the reply and adds write interest; a writable report sends it and removes write interest again.
 * The lab counts, per message, the wake-ups, the interest changes and the system calls they cost,
 * and the reads and writes, on:
 * - select and poll: interest is the caller's memory, a change costs no system call;
 * - epoll level-triggered, one EPOLL_CTL_MOD per change;
 * - epoll level-triggered, batched: changes applied just before the next wait (libuv's way), so a
 *   change undone before then costs nothing;
 * - epoll edge-triggered with IN|OUT registered once: no change at all; every wake-up carries the
 *   writable bit, so the reply goes out in the turn of the read (which must drain until EAGAIN).
 * The peer keeps `depth` messages in flight: it sends the next as soon as it has read a reply.
 */
import { binding } from '../../../lib/native';
import type { LabParams, MechanismName, Scenario, Trace, Variant } from '../model';
import type { Interest } from '../mechanisms';
import { inSession, type Session } from '../session';
import { describeGroups } from '../conclusions';

/** Bytes per message, and what one recv may take (a server reads in big chunks). */
const MESSAGE = 64;
const READ_SIZE = 64 * 1024;

/** What the handler asks the kernel to watch, and what it costs to say so. */
class InterestKeeper {
  /** Interest changes the handler made (adding or removing write interest). */
  changes = 0;
  /** The system calls those changes cost (EPOLL_CTL_MOD), counted where they are made. */
  syscalls = 0;
  private applied: Interest;
  private wanted: Interest;

  constructor(private readonly s: Session, private readonly fd: number, initial: Interest,
    private readonly batched: boolean) {
    this.applied = { ...initial };
    this.wanted = { ...initial };
  }

  get writing(): boolean {
    return this.wanted.write === true;
  }

  want(write: boolean): void {
    if (this.wanted.write === write) return;
    this.changes++;
    this.wanted = { read: true, write };
    const note = write ? 'add write interest' : 'remove write interest';
    if (this.batched) {
      this.s.record({ op: 'interest', result: 0, note: `${note} (deferred)` });
    } else {
      this.s.record({ op: 'interest', result: this.costsSyscall() ? 1 : 0, note });
      this.apply();
    }
  }

  /** Batched: called just before each wait. */
  beforeWait(): void {
    if (!this.batched) return;
    if (this.apply()) this.s.record({ op: 'interest', result: 1, note: 'deferred change applied' });
  }

  private costsSyscall(): boolean {
    return this.s.variant.mechanism.startsWith('epoll');
  }

  /** Returns whether it made a system call. */
  private apply(): boolean {
    if (this.applied.write === this.wanted.write) return false; // Undone before the wait: free.
    this.s.watcher.modify(this.fd, this.wanted);
    this.applied = { ...this.wanted };
    if (!this.costsSyscall()) return false;
    this.syscalls++;
    return true;
  }
}

export const interestChurn: Scenario = {
  name: 'interest-churn',
  title: 'the seed\'s strict read/write separation: wake-ups, interest changes and system calls per message',
  defaults: { messages: 20, depth: 1 },
  columns: [
    { key: 'messages', label: 'messages' },
    { key: 'wakeupsPerMessage', label: 'wake-ups/msg' },
    { key: 'changesPerMessage', label: 'interest changes/msg' },
    { key: 'syscallsPerMessage', label: 'their syscalls/msg' },
    { key: 'readsPerMessage', label: 'recv/msg' },
    { key: 'writesPerMessage', label: 'send/msg' },
  ],
  unit: 'bytes',

  variants(mechanisms: MechanismName[]): Variant[] {
    const variants: Variant[] = [];
    for (const mechanism of mechanisms) {
      if (mechanism === 'epoll-oneshot') continue; // One-shot re-arms on every event: another scenario's subject.
      variants.push({ mechanism, rdhup: false, exclusive: false });
      if (mechanism === 'epoll-lt') variants.push({ mechanism, rdhup: false, exclusive: false, batched: true });
    }
    return variants;
  },

  setup(p: LabParams): string {
    return `The peer sends ${p.messages} messages of ${MESSAGE} bytes, keeping ${p.depth} in flight (the next goes ` +
      `as soon as it has read a reply). The handler is strictly separated: a read (recv of up to ${READ_SIZE} bytes) ` +
      'only queues the replies and adds write interest; a writable report sends the queue and removes write ' +
      'interest. Edge-triggered epoll registers IN|OUT once and never changes it (its reads drain until EAGAIN). ' +
      'Interest-change system calls are counted by the lab where it makes them (select and poll change memory).';
  },

  run(variant, p): Promise<Trace> {
    return inSession(variant, (s) => {
      const edge = variant.mechanism === 'epoll-et';
      const initial: Interest = edge ? { read: true, write: true } : { read: true };
      const { local, peer } = s.watchedPair(initial);
      const interest = new InterestKeeper(s, local, initial, variant.batched === true);
      const message = Buffer.alloc(MESSAGE, 0x6d);
      let sent = 0;
      let received = 0;
      let queued = 0;
      let reads = 0;
      let writes = 0;
      let bytesRead = 0;
      let stalled = false;
      const peerSend = (): void => {
        binding.send(peer, message);
        sent++;
        s.timeline.step(`peer: send message ${sent} (${MESSAGE} bytes)`, peer, MESSAGE, `send ${MESSAGE}`);
      };
      for (let i = 0; i < Math.min(p.depth, p.messages); i++) peerSend();
      while (received < p.messages) {
        interest.beforeWait();
        const reported = s.react(p.stallMs, (r) => {
          const actions: string[] = [];
          let moved = 0;
          if (r.events.includes('IN') || r.events.includes('HUP')) {
            // Level-triggered: one read per wake-up. Edge-triggered: until EAGAIN, or bytes are stranded.
            for (;;) {
              const n = s.recv(local, READ_SIZE);
              reads++;
              if (n <= 0) {
                actions.push('recv → EAGAIN');
                break;
              }
              bytesRead += n;
              moved += n;
              queued += n / MESSAGE;
              actions.push(`recv → ${n} bytes; queue ${n / MESSAGE} repl${n === MESSAGE ? 'y' : 'ies'}`);
              if (!edge) break;
            }
            if (!edge && queued > 0) {
              const was = interest.writing;
              interest.want(true);
              if (!was) actions.push(variant.batched ? 'want write interest (applied before the next wait)' : 'add write interest');
            }
          }
          if (r.events.includes('OUT') && queued > 0) {
            const reply = Buffer.alloc(queued * MESSAGE, 0x72);
            s.record({ op: 'send', result: binding.send(local, reply) });
            writes++;
            actions.push(`send → ${reply.length} bytes`);
            queued = 0;
            if (!edge) {
              interest.want(false);
              actions.push(variant.batched ? 'drop write interest (before the next wait)' : 'remove write interest');
            }
          } else if (r.events.includes('OUT')) {
            actions.push('writable, nothing queued');
          }
          return { action: actions.join('; '), bytes: moved };
        });
        if (!reported) {
          stalled = true;
          s.timeline.quiet(p.stallMs, `${received} of ${p.messages} replies back`);
          break;
        }
        // The peer reads what came back and keeps `depth` messages in flight.
        for (;;) {
          const n = binding.recv(peer, s.scratch, 0, READ_SIZE);
          if (n <= 0) break;
          const replies = n / MESSAGE;
          received += replies;
          s.timeline.step(`peer: recv → ${replies} repl${replies === 1 ? 'y' : 'ies'}`, peer, n, 'peer reads');
          for (let k = 0; k < replies && sent < p.messages; k++) peerSend();
        }
      }
      // A change still deferred would be applied by the next wait: it is a cost all the same.
      const applied = interest.syscalls;
      interest.beforeWait();
      if (interest.syscalls > applied) s.timeline.step('handler: the deferred change, applied as the next wait would', local, null, 'deferred change');
      const per = (n: number): number => Math.round((n / p.messages) * 100) / 100;
      const wakeups = s.timeline.wakeups;
      return s.finish({
        bytesRead,
        bytesLeft: 0,
        stalled,
        counts: {
          messages: received,
          changes: interest.changes,
          syscalls: interest.syscalls,
          reads,
          writes,
          wakeupsPerMessage: per(wakeups),
          changesPerMessage: per(interest.changes),
          syscallsPerMessage: per(interest.syscalls),
          readsPerMessage: per(reads),
          writesPerMessage: per(writes),
        },
      });
    });
  },

  conclude(traces, p): string[] {
    const lines = describeGroups(traces, (t) => {
      const c = t.summary.counts;
      return `per message: wake-ups ${c.wakeupsPerMessage}, interest changes ${c.changesPerMessage} (system calls ` +
        `${c.syscallsPerMessage}), recv ${c.readsPerMessage}, send ${c.writesPerMessage}`;
    });
    const find = (label: string): Trace | undefined => traces.find((t) => t.label === label && !t.summary.error);
    const lt = find('epoll-lt');
    const batched = find('epoll-lt+batched');
    const et = find('epoll-et');
    const poll = find('poll') ?? find('select');
    if (lt && poll) {
      lines.push(`The same ${lt.summary.counts.changesPerMessage} interest changes per message cost epoll ` +
        `${lt.summary.counts.syscallsPerMessage} system calls (EPOLL_CTL_MOD) and ${poll.label} none: its interest set ` +
        'is the caller\'s memory, handed to the kernel whole on every wait.');
    }
    if (lt && batched) {
      const saved = Number(lt.summary.counts.syscalls) - Number(batched.summary.counts.syscalls);
      lines.push(saved > 0
        ? `Batching saved ${saved} of ${lt.summary.counts.syscalls} EPOLL_CTL_MOD calls: changes undone before the next wait cost nothing.`
        : `Batching saved nothing here (${batched.summary.counts.syscalls} EPOLL_CTL_MOD calls either way): with ` +
          `${p.depth} message${p.depth === 1 ? '' : 's'} in flight every change outlives its turn — the read adds write ` +
          'interest, the reply can only go on the next wait, and the next request only comes once the reply has left.');
    }
    if (et) {
      lines.push(`Edge-triggered with IN|OUT registered once: ${et.summary.counts.syscalls} interest system calls in all and ` +
        `${et.summary.counts.wakeupsPerMessage} wake-up(s) per message (each reply leaves in the turn of its read), at the ` +
        `price of ${et.summary.counts.readsPerMessage} recv per message: draining until EAGAIN is the rule.`);
    }
    return lines;
  },
};
