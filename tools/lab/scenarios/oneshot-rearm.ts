/**
 * oneshot-rearm: EPOLLONESHOT disables a descriptor after it reports once; nothing more is reported,
 * whatever arrives, until EPOLL_CTL_MOD re-arms it, and a re-arm with data waiting reports at once.
 */
import type { LabParams, Scenario, Trace } from '../model';
import { inSession, describeDrain, type Session } from '../session';
import { sendUpTo } from '../sockets';
import { describeGroups } from '../conclusions';

export const oneshotRearm: Scenario = {
  name: 'oneshot-rearm',
  title: 'EPOLLONESHOT reports once, then nothing whatever arrives, until EPOLL_CTL_MOD re-arms it',
  defaults: { messages: 3, chunk: 1024 },
  columns: [
    { key: 'wakeups', label: 'wake-ups' },
    { key: 'withoutRearm', label: 'without re-arming' },
    { key: 'leftUnseen', label: 'bytes unseen' },
    { key: 'onRearm', label: 'on the re-arm' },
    { key: 'rearmingEach', label: 're-arming each time' },
    { key: 'bytesLeft', label: 'bytes left' },
  ],

  setup(p: LabParams): string {
    return `Phase 1: the peer sends ${p.messages} messages of ${p.chunk} bytes one at a time, and the lab waits ` +
      'after each; the handler reads until EAGAIN whenever woken but never re-arms. Phase 2: the handler re-arms ' +
      'with EPOLL_CTL_MOD, the lab waits, and from then on the handler re-arms after every wake-up. Phase 3: ' +
      `${p.messages} more messages. (select and poll have nothing to arm; the re-arm is an EPOLL_CTL_MOD only for epoll.) ` +
      `Each wait gives up after ${p.stallMs} ms.`;
  },

  run(variant, p): Promise<Trace> {
    return inSession(variant, (s) => {
      const interest = { read: true };
      const { local, peer } = s.watchedPair(interest);
      const io = { sent: 0, read: 0 };

      s.timeline.step('phase 1: no re-arming', null, null, 'phase 1');
      let withoutRearm = 0;
      for (let i = 1; i <= p.messages; i++) {
        send(s, peer, p, io, i);
        withoutRearm += waitAndRead(s, p, io, false);
      }
      const leftUnseen = io.sent - io.read;

      s.timeline.step(`phase 2: handler ${s.rearm(local, interest)}, and from now on after every wake-up`, local, null, 'phase 2: re-arm');
      const onRearm = waitAndRead(s, p, io, true);

      s.timeline.step('phase 3: more messages, re-arming after every wake-up', null, null, 'phase 3');
      let rearmingEach = 0;
      for (let i = 1; i <= p.messages; i++) {
        send(s, peer, p, io, i);
        rearmingEach += waitAndRead(s, p, io, true);
      }
      return s.finish({
        bytesRead: io.read,
        bytesLeft: io.sent - io.read,
        stalled: io.sent > io.read,
        counts: { withoutRearm, leftUnseen, onRearm, rearmingEach },
      });
    });
  },

  conclude(traces, p): string[] {
    return describeGroups(traces, (t) => {
      const c = t.summary.counts;
      return `woke for ${c.withoutRearm} of ${p.messages} messages without re-arming` +
        (Number(c.leftUnseen) > 0 ? ` (${c.leftUnseen} bytes arrived unreported)` : '') +
        `, ${c.onRearm} time${c.onRearm === 1 ? '' : 's'} on the re-arm, and for ${c.rearmingEach} of ` +
        `${p.messages} when re-arming each time`;
    });
  },
};

interface Io {
  sent: number;
  read: number;
}

function send(s: Session, peer: number, p: LabParams, io: Io, index: number): void {
  const n = sendUpTo(peer, p.chunk, s.scratch);
  io.sent += n;
  s.timeline.step(`peer: send(${p.chunk}), message ${index} of ${p.messages}; ${io.sent - io.read} unread`, peer, n, `send ${n}`);
}

/** One wait; the handler reads until EAGAIN (and re-arms if asked). Returns 1 if it was woken. */
function waitAndRead(s: Session, p: LabParams, io: Io, rearm: boolean): number {
  const reported = s.react(p.stallMs, ({ fd }) => {
    const d = s.drain(fd);
    io.read += d.bytes;
    return { action: `${describeDrain(d)}; ${io.sent - io.read} unread`, bytes: d.bytes };
  }, rearm ? { read: true } : undefined);
  if (!reported) s.timeline.quiet(p.stallMs, `${io.sent - io.read} bytes unread`, io.sent - io.read);
  return reported ? 1 : 0;
}
