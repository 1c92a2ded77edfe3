/**
 * writable: write interest left on while the send buffer has room. Level-triggered reports writable on
 * every wait (a busy loop if the handler has nothing to send); edge-triggered reports once, and again
 * only after the buffer went from full to having room. Shown by filling the buffer, then having the
 * peer read everything.
 */
import { binding, constants } from '../../../lib/native';
import type { LabParams, Scenario, Trace } from '../model';
import { inSession, type Session } from '../session';
import { fillSendBuffer, receiveExactly } from '../sockets';
import { describeGroups } from '../conclusions';

/** Small buffers keep the numbers readable and filling quick; the kernel doubles what it is given. */
const BUFFER_BYTES = 64 * 1024;
/** Refills after the first fill; the buffers fill up within one or two. */
const MAX_REFILLS = 20;

export const writable: Scenario = {
  name: 'writable',
  title: 'write interest left on with room to write: a busy loop, or one report per full-to-not-full edge?',
  defaults: { waits: 5, cycles: 2, rearm: false },
  columns: [
    { key: 'wakeups', label: 'wake-ups' },
    { key: 'idle', label: 'while idle' },
    { key: 'whileFilling', label: 'while filling' },
    { key: 'afterDrain', label: 'after the peer read' },
  ],

  setup(p: LabParams): string {
    return `The handler watches a connected socket for writing but has nothing to send; the lab waits ` +
      `${p.waits} times. Then, ${p.cycles} times over: the handler sends until EAGAIN (and again whenever ` +
      `woken, until a wait reports nothing: the buffer is full), the peer reads everything, and the lab ` +
      `waits ${p.waits} times again${p.rearm ? ' (re-arming with EPOLL_CTL_MOD after every wake-up: --rearm)' : ''}. ` +
      `Each wait gives up after ${p.stallMs} ms.`;
  },

  run(variant, p): Promise<Trace> {
    return inSession(variant, (s) => {
      const interest = { write: true };
      const { local, peer } = s.watchedPair(interest);
      binding.setsockopt(local, constants.SOL_SOCKET, constants.SO_SNDBUF, BUFFER_BYTES);
      binding.setsockopt(peer, constants.SOL_SOCKET, constants.SO_RCVBUF, BUFFER_BYTES);
      let waits = 0;
      const phase = (count: number, note: string): number => {
        let woke = 0;
        for (let i = 0; i < count; i++) {
          waits++;
          woke += waitOnce(s, p, note, interest);
        }
        return woke;
      };
      const idle = phase(p.waits, 'nothing to send');
      let whileFilling = 0;
      let afterDrain = 0;
      let sentTotal = 0;
      for (let c = 1; c <= p.cycles; c++) {
        let filled = fillSendBuffer(local, s.scratch, s.record);
        s.timeline.step(`handler: send until EAGAIN → ${filled} bytes`, local, filled, 'fill');
        // The peer's kernel may still acknowledge data it holds (a delayed ACK), which frees room: a real
        // handler would send again, so this one does, until a wait reports nothing.
        for (let refills = 0; refills < MAX_REFILLS; refills++) {
          const reported = s.react(p.stallMs, () => {
            const more = fillSendBuffer(local, s.scratch, s.record);
            filled += more;
            return { action: `writable again (the peer's kernel acknowledged data); send until EAGAIN → ${more} bytes`, bytes: more };
          }, p.rearm ? interest : undefined);
          if (!reported) {
            s.timeline.quiet(p.stallMs, 'the send buffer stays full');
            break;
          }
          whileFilling++;
        }
        sentTotal += filled;
        const got = receiveExactly(peer, filled, s.scratch, 1000);
        s.timeline.step(`peer: recv everything → ${got} bytes; all that was sent has arrived`, peer, got, 'peer reads');
        afterDrain += phase(p.waits, 'nothing to send');
      }
      return s.finish({
        bytesRead: 0,
        bytesLeft: 0,
        stalled: false,
        counts: { idle, whileFilling, afterDrain, waits, bytesSent: sentTotal },
      });
    });
  },

  conclude(traces, p): string[] {
    const afterWaits = p.waits * p.cycles;
    const lines = describeGroups(traces, (t) => {
      const c = t.summary.counts;
      return `reported writable on ${c.idle} of ${p.waits} waits before anything was sent, and on ` +
        `${c.afterDrain} of ${afterWaits} waits after the peer had read everything`;
    });
    const busy = traces.filter((t) => !t.summary.error && t.summary.counts.idle === p.waits && p.waits > 1);
    if (busy.length) {
      lines.push(`${busy.map((t) => t.label).join(', ')} reported writable on every wait: write interest left on ` +
        'with nothing to send is a busy loop. Add write interest only when a send would block; remove it once ' +
        'the queue is empty.');
    }
    const et = traces.find((t) => t.label === 'epoll-et');
    if (et && et.summary.counts.afterDrain === p.cycles) {
      lines.push('epoll-et reported writable once at the start and once per cycle after the peer read: one ' +
        'report per change from full to room-to-write.');
    }
    return lines;
  },
};

/** One wait; returns 1 if it reported the socket. */
function waitOnce(s: Session, p: LabParams, note: string, interest: { write: boolean }): number {
  const reported = s.react(p.stallMs, () => ({ action: `writable; handler: ${note}`, bytes: 0 }), p.rearm ? interest : undefined);
  if (!reported) s.timeline.quiet(p.stallMs, note);
  return reported ? 1 : 0;
}
