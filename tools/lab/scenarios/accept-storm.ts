/**
 * accept-storm: M connections arrive at once. Accepting one per wake-up works under level-triggered
 * (one wake-up each) but strands the rest under edge-triggered and one-shot; accepting until EAGAIN
 * (--drain) takes them all in one wake-up everywhere.
 */
import { binding } from '../../../lib/native';
import type { LabParams, Scenario, Trace } from '../model';
import { inSession } from '../session';
import { closeAll, connectLoopback, openListener, type Recorder } from '../sockets';
import { describeGroups, plural, times } from '../conclusions';

export const acceptStorm: Scenario = {
  name: 'accept-storm',
  title: '50 connections arrive at once, the handler accepts one per wake-up: who gets the rest?',
  defaults: { connections: 50, drain: false, rearm: false },
  unit: 'connections',
  columns: [
    { key: 'wakeups', label: 'wake-ups' },
    { key: 'accepted', label: 'accepted' },
    { key: 'queued', label: 'still queued' },
    { key: 'stalled', label: 'stalled' },
  ],

  setup(p: LabParams): string {
    const handler = p.drain ? 'accepts until accept says EAGAIN (--drain)' : 'accepts one connection';
    return `${p.connections} clients connect to a listening socket before the handler's first wait. On each ` +
      `wake-up the handler ${handler}${p.rearm ? ', re-arms with EPOLL_CTL_MOD (--rearm)' : ''} and waits again. ` +
      `A wait that reports nothing for ${p.stallMs} ms while connections are still queued is a stall.`;
  },

  run(variant, p): Promise<Trace> {
    return inSession(variant, (s) => {
      const listener = openListener(p.connections);
      s.own(listener.fd, 'listener');
      const interest = { read: true };
      s.watch(listener.fd, interest);
      const clients: number[] = [];
      try {
        for (let i = 0; i < p.connections; i++) clients.push(connectLoopback(listener.port));
        s.timeline.step(`${plural(p.connections, 'client')} connect; all wait in the accept queue`, null, p.connections, `${p.connections} connect`);
        let accepted = 0;
        let stalled = false;
        const limit = p.connections + 10;
        while (accepted < p.connections && s.timeline.wakeups < limit) {
          const reported = s.react(p.stallMs, ({ fd }) => {
            const got = p.drain ? acceptUntilEagain(fd, s.record) : acceptOne(fd, s.record);
            accepted += got;
            const action = p.drain
              ? `accept until EAGAIN → ${plural(got, 'connection')}`
              : got ? 'accept → 1 connection' : 'accept → EAGAIN';
            return { action: `${action}; ${p.connections - accepted} still queued`, bytes: got };
          }, p.rearm ? interest : undefined);
          if (!reported) {
            s.timeline.stall(p.stallMs, `${plural(p.connections - accepted, 'connection')} in the accept queue`, p.connections - accepted);
            stalled = true;
            break;
          }
        }
        if (accepted === p.connections) s.timeline.step(`all ${p.connections} connections accepted`, null, null, 'all accepted');
        return s.finish({
          bytesRead: 0,
          bytesLeft: 0,
          stalled,
          counts: { accepted, queued: p.connections - accepted },
        });
      } finally {
        closeAll(...clients);
      }
    });
  },

  conclude(traces, p): string[] {
    const lines = describeGroups(traces, (t) =>
      `woke ${times(t.summary.wakeups)} and accepted ${t.summary.counts.accepted} of ${p.connections}` +
      (t.summary.stalled ? `, leaving ${t.summary.counts.queued} in the queue with no further wake-up` : ''));
    if (!p.drain && traces.some((t) => t.summary.stalled)) {
      lines.push('Under edge-triggered epoll a listener must be accepted from until EAGAIN: try --drain.');
    }
    return lines;
  },
};

/** Accepts one connection and closes it at once (the scenario is about the queue, not the connection). */
function acceptOne(listenFd: number, record: Recorder): number {
  const fd = binding.accept(listenFd, true);
  record({ op: 'accept', result: fd < 0 ? -1 : 1 });
  if (fd < 0) return 0;
  binding.close(fd);
  return 1;
}

function acceptUntilEagain(listenFd: number, record: Recorder): number {
  let count = 0;
  while (acceptOne(listenFd, record)) count++;
  return count;
}
