/**
 * partial-read: the peer sends K bytes at once and the handler reads C bytes per wake-up. Level-
 * triggered mechanisms keep reporting until the data is gone; edge-triggered and one-shot report once
 * and the rest is stranded until something else happens. --drain shows the edge-triggered fix.
 */
import type { LabParams, Scenario, Trace } from '../model';
import { inSession, describeDrain } from '../session';
import { sendUpTo } from '../sockets';
import { describeGroups, times } from '../conclusions';

export const partialRead: Scenario = {
  name: 'partial-read',
  title: 'the peer sends 10 KiB at once, the handler reads 1 KiB per wake-up: who reports the rest?',
  defaults: { bytes: 10240, chunk: 1024, drain: false, rearm: false },
  columns: [
    { key: 'wakeups', label: 'wake-ups' },
    { key: 'bytesRead', label: 'bytes read' },
    { key: 'bytesLeft', label: 'bytes left' },
    { key: 'stalled', label: 'stalled' },
  ],

  setup(p: LabParams): string {
    const handler = p.drain
      ? 'reads until recv says EAGAIN (--drain)'
      : `reads ${p.chunk} bytes (one recv)`;
    return `The peer sends ${p.bytes} bytes in one go. On each wake-up the handler ${handler}` +
      `${p.rearm ? ', re-arms with EPOLL_CTL_MOD (--rearm)' : ''} and waits again. A wait that reports ` +
      `nothing for ${p.stallMs} ms while bytes remain unread is a stall.`;
  },

  run(variant, p): Promise<Trace> {
    return inSession(variant, (s) => {
      const interest = { read: true };
      const { peer } = s.watchedPair(interest);
      const sent = sendUpTo(peer, p.bytes, s.scratch);
      s.timeline.step(`peer: send(${p.bytes}) → ${sent} bytes${sent < p.bytes ? ' (the kernel\'s buffers are full)' : ''}`, peer, sent, `send ${sent}`);

      let read = 0;
      let stalled = false;
      // Level-triggered needs ceil(sent / chunk) wake-ups; anything far beyond that is a runaway.
      const limit = Math.ceil(sent / p.chunk) + 10;
      while (read < sent && s.timeline.wakeups < limit) {
        const reported = s.react(p.stallMs, ({ fd }) => {
          let moved: number;
          let action: string;
          if (p.drain) {
            const d = s.drain(fd, p.chunk);
            moved = d.bytes;
            action = describeDrain(d, p.chunk);
          } else {
            moved = Math.max(0, s.recv(fd, p.chunk));
            action = moved > 0 ? `recv(${p.chunk}) → ${moved} bytes` : `recv(${p.chunk}) → EAGAIN`;
          }
          read += moved;
          return { action: `${action}; ${sent - read} unread`, bytes: moved };
        }, p.rearm ? interest : undefined);
        if (!reported) {
          s.timeline.stall(p.stallMs, `${sent - read} bytes unread`, sent - read);
          stalled = true;
          break;
        }
      }
      if (read === sent) s.timeline.step(`all ${sent} bytes read`, null, null, 'all read');
      return s.finish({ bytesRead: read, bytesLeft: sent - read, stalled, counts: { sent } });
    });
  },

  conclude(traces, p): string[] {
    const lines = describeGroups(traces, (t) =>
      t.summary.stalled
        ? `reported the socket ${times(t.summary.wakeups)}, then stayed silent with ${t.summary.bytesLeft} bytes unread`
        : `reported the socket ${times(t.summary.wakeups)} and all ${t.summary.bytesRead} bytes were read`);
    if (!p.drain && traces.some((t) => t.summary.stalled)) {
      lines.push('An edge-triggered or one-shot handler must read until EAGAIN (try --drain), or re-arm with ' +
        'EPOLL_CTL_MOD, which reports data still waiting (try --rearm).');
    }
    return lines;
  },
};

