/**
 * arrivals: data keeps arriving while the handler leaves it unread. After each arrival the lab waits
 * twice: once right after the arrival and once more with nothing new. Level-triggered reports both;
 * edge-triggered reports each arrival (even though data was already waiting) and nothing in between;
 * one-shot reports the first arrival only.
 */
import type { LabParams, Scenario, Trace } from '../model';
import { inSession } from '../session';
import { sendUpTo } from '../sockets';
import { describeGroups, plural } from '../conclusions';

export const arrivals: Scenario = {
  name: 'arrivals',
  title: 'more data arrives while earlier data is still unread: which arrivals wake the handler?',
  defaults: { messages: 5, chunk: 1024, rearm: false },
  columns: [
    { key: 'wakeups', label: 'wake-ups' },
    { key: 'afterArrival', label: 'after an arrival' },
    { key: 'withoutArrival', label: 'with nothing new' },
    { key: 'bytesLeft', label: 'bytes left' },
  ],

  setup(p: LabParams): string {
    return `The peer sends ${p.messages} messages of ${p.chunk} bytes, one at a time. The handler never reads ` +
      `(it is busy elsewhere)${p.rearm ? ' but re-arms with EPOLL_CTL_MOD on every wake-up (--rearm)' : ''}. ` +
      `After each arrival the lab waits twice: once for the arrival, once more with nothing new. Each wait ` +
      `gives up after ${p.stallMs} ms.`;
  },

  run(variant, p): Promise<Trace> {
    return inSession(variant, (s) => {
      const interest = { read: true };
      const { peer } = s.watchedPair(interest);
      let sent = 0;
      let afterArrival = 0;
      let withoutArrival = 0;
      let lastWaitReported = false;
      const waitOnce = (newData: boolean): void => {
        lastWaitReported = s.react(p.stallMs, () => ({ action: `handler leaves the data; ${sent} bytes unread`, bytes: 0 }),
          p.rearm ? interest : undefined) > 0;
        if (!lastWaitReported) s.timeline.quiet(p.stallMs, `${sent} bytes unread`, sent);
        else if (newData) afterArrival++;
        else withoutArrival++;
      };
      for (let i = 1; i <= p.messages; i++) {
        sent += sendUpTo(peer, p.chunk, s.scratch);
        s.timeline.step(`peer: send(${p.chunk}), arrival ${i} of ${p.messages}`, peer, p.chunk, `send ${p.chunk}`);
        waitOnce(true);
        waitOnce(false);
      }
      return s.finish({
        bytesRead: 0,
        bytesLeft: sent,
        stalled: !lastWaitReported,
        counts: { afterArrival, withoutArrival },
      });
    });
  },

  conclude(traces, p): string[] {
    const lines = describeGroups(traces, (t) => {
      const after = Number(t.summary.counts.afterArrival);
      const without = Number(t.summary.counts.withoutArrival);
      return `woke after ${after} of ${p.messages} arrivals and on ${without} of ${p.messages} waits with nothing new`;
    });
    const et = traces.find((t) => t.label === 'epoll-et');
    if (et && et.summary.counts.afterArrival === p.messages && p.messages > 1) {
      lines.push(`Edge-triggered epoll woke for every one of the ${plural(p.messages, 'arrival')}, although unread data ` +
        'was already waiting each time: on a socket an "edge" is each arrival, not only the empty-to-non-empty ' +
        'transition.');
    }
    return lines;
  },
};
