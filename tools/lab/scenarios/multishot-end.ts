/**
 * multishot-end: when does io_uring end a multishot poll? Many watched sockets become readable at
 * once while the completion ring has room for only a few completions: the kernel posts what fits
 * (with IORING_CQE_F_MORE) and ends every other multishot poll, whose last completion (without
 * IORING_CQE_F_MORE, shown as END) it delivers once the ring has room. An ended poll reports nothing
 * more: the next arrivals on those sockets go unseen unless the handler arms a new poll (--rearm).
 * epoll, poll and select have no completion ring to fill: they report every socket both times.
 */
import type { LabParams, MechanismName, Scenario, Trace, Variant } from '../model';
import { inSession } from '../session';
import { openPair, sendUpTo } from '../sockets';
import { describeGroups, plural } from '../conclusions';

/** The io_uring column's completion ring: 4 entries (the kernel rounds to a power of two, at least the submission ring). */
const SMALL_CQ = 4;

export const multishotEnd: Scenario = {
  name: 'multishot-end',
  title: 'more sockets ready at once than io_uring\'s completion ring holds: which multishot polls end?',
  defaults: { connections: 8, rearm: false },
  columns: [
    { key: 'wakeups', label: 'wake-ups' },
    { key: 'ended', label: 'polls ended' },
    { key: 'firstRound', label: 'reported, round 1' },
    { key: 'secondRound', label: 'reported, round 2' },
    { key: 'bytesLeft', label: 'bytes left' },
  ],

  // One-shot epoll ends after every event by design (oneshot-rearm shows it): not a column here.
  variants(mechanisms: MechanismName[]): Variant[] {
    return mechanisms.filter((m) => m !== 'epoll-oneshot').map((mechanism) => ({
      mechanism, rdhup: false, exclusive: false, ...(mechanism === 'io_uring' ? { cqEntries: SMALL_CQ } : {}),
    }));
  },

  setup(p: LabParams): string {
    return `${p.connections} connections are watched for reading; io_uring's completion ring has ${SMALL_CQ} entries. ` +
      `Round 1: the peer sends 1 byte on every connection at once, and the lab waits until a wait reports nothing, ` +
      `the handler reading until EAGAIN on each wake-up${p.rearm ? ' and arming a new multishot POLL_ADD when a ' +
      'completion says the poll ended (--rearm)' : ''}. Round 2: the same again. Each wait gives up after ${p.stallMs} ms.`;
  },

  run(variant, p): Promise<Trace> {
    return inSession(variant, (s) => {
      const interest = { read: true };
      const peers: number[] = [];
      for (let i = 1; i <= p.connections; i++) {
        const pair = openPair();
        s.own(pair.local, `watched${i}`);
        peers.push(s.own(pair.peer, `peer${i}`));
        s.watch(pair.local, interest);
      }
      let ended = 0;
      let rearmed = 0;
      let sent = 0;
      let read = 0;
      const round = (n: number): number => {
        for (const peer of peers) sent += sendUpTo(peer, 1, s.scratch);
        s.timeline.step(`peer: send(1) on each of the ${p.connections} connections (round ${n})`, null, p.connections, `send 1 ×${p.connections}`);
        const reported = new Set<number>();
        while (s.react(p.stallMs, ({ fd, events }) => {
          const d = s.drain(fd);
          read += d.bytes;
          reported.add(fd);
          let action = `recv until EAGAIN: ${d.bytes} byte${d.bytes === 1 ? '' : 's'}`;
          if (events.includes('END')) {
            ended++;
            if (p.rearm) {
              s.watcher.add(fd, interest);
              s.record({ op: 'interest', result: 1, note: 'new POLL_ADD' });
              rearmed++;
              action += '; the multishot poll ended: a new POLL_ADD arms it again';
            } else {
              action += '; the multishot poll ended (no IORING_CQE_F_MORE): nothing watches this socket now';
            }
          }
          return { action, bytes: d.bytes };
        }) > 0) { /* until a wait reports nothing */ }
        s.timeline.quiet(p.stallMs, `${sent - read} bytes unread`, sent - read);
        return reported.size;
      };
      const firstRound = round(1);
      const secondRound = round(2);
      return s.finish({
        bytesRead: read,
        bytesLeft: sent - read,
        stalled: sent > read,
        counts: { ended, rearmed, firstRound, secondRound },
      });
    });
  },

  conclude(traces, p): string[] {
    const lines = describeGroups(traces, (t) => {
      const c = t.summary.counts;
      const end = Number(c.ended) > 0 ? `; ${plural(Number(c.ended), 'multishot poll')} ended` : '';
      return `reported ${c.firstRound} of ${p.connections} connections in round 1 and ${c.secondRound} of ` +
        `${p.connections} in round 2${end}${Number(c.rearmed) > 0 ? ` and ${c.rearmed} were re-armed` : ''}`;
    });
    const uring = traces.find((t) => t.variant.mechanism === 'io_uring');
    if (uring && Number(uring.summary.counts.ended) > 0) {
      lines.push('A full completion ring ends multishot polls: the kernel posts what fits and ends the others, whose ' +
        'last completion comes without IORING_CQE_F_MORE. ' + (p.rearm
        ? 'Arming a new poll on each such completion keeps every socket watched (IoUringSelector does this).'
        : 'Those sockets then report nothing: a program must arm a new poll on such a completion (try --rearm).'));
    }
    return lines;
  },
};
