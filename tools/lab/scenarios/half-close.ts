/**
 * half-close: the peer sends a little, then shuts down its sending side (FIN); later the handler shuts
 * down its own. Which events arrive at each step, with and without EPOLLRDHUP / POLLRDHUP, and how
 * often: level-triggered keeps reporting end-of-stream, edge-triggered reports each change once.
 */
import { binding, constants } from '../../../lib/native';
import type { EventName, LabParams, MechanismName, Scenario, Trace, Variant } from '../model';
import { inSession, describeDrain } from '../session';
import { sendUpTo } from '../sockets';
import { describeGroups } from '../conclusions';

export const halfClose: Scenario = {
  name: 'half-close',
  title: 'the peer shuts down its sending side: which events say so, and how often (with and without RDHUP)?',
  defaults: { bytes: 5, waits: 2, rearm: false },
  columns: [
    { key: 'wakeups', label: 'wake-ups' },
    { key: 'atData', label: 'data arrives' },
    { key: 'atFin', label: 'peer shut down' },
    { key: 'afterEof', label: 'later waits' },
    { key: 'atClose', label: 'both shut down' },
  ],

  variants(mechanisms: MechanismName[]): Variant[] {
    return mechanisms.flatMap((mechanism) => {
      const plain: Variant = { mechanism, rdhup: false, exclusive: false };
      return mechanism === 'select' ? [plain] : [plain, { ...plain, rdhup: true }];
    });
  },

  setup(p: LabParams): string {
    return `The peer sends ${p.bytes} bytes, then calls shutdown(SHUT_WR): its FIN says it will send nothing ` +
      `more, but it can still receive. The handler reads until EAGAIN or end of stream on every wake-up` +
      `${p.rearm ? ' and re-arms with EPOLL_CTL_MOD (--rearm)' : ''}, and keeps its socket open. The lab waits ` +
      `once after each step and ${p.waits} more times after the FIN; finally the handler shuts down its own ` +
      `sending side. Each wait gives up after ${p.stallMs} ms. Variants marked +rdhup ask for EPOLLRDHUP ` +
      '(epoll) or POLLRDHUP (poll).';
  },

  run(variant, p): Promise<Trace> {
    return inSession(variant, (s) => {
      const interest = { read: true };
      const { local, peer } = s.watchedPair(interest);
      let bytesRead = 0;
      let eof = false;
      // One wait; returns the events reported ('-' for none) after letting the handler read.
      const step = (): string => {
        const events: EventName[] = [];
        const reported = s.react(p.stallMs, (r) => {
          const d = s.drain(r.fd);
          bytesRead += d.bytes;
          eof ||= d.eof;
          events.push(...r.events);
          return { action: d.eof && d.bytes === 0 && d.calls === 1 ? 'recv → 0: end of stream' : describeDrain(d), bytes: d.bytes };
        }, p.rearm ? interest : undefined);
        if (!reported) s.timeline.quiet(p.stallMs);
        return reported ? events.join('|') : '-';
      };

      const sent = sendUpTo(peer, p.bytes, s.scratch);
      s.timeline.step(`peer: send(${p.bytes}) → ${sent} bytes`, peer, sent, `send ${sent}`);
      const atData = step();
      binding.shutdown(peer, constants.SHUT_WR);
      s.timeline.step('peer: shutdown(SHUT_WR), its FIN arrives', peer, null, 'peer FIN');
      const atFin = step();
      let afterEof = 0;
      for (let i = 0; i < p.waits; i++) if (step() !== '-') afterEof++;
      binding.shutdown(local, constants.SHUT_WR);
      s.timeline.step('handler: shutdown(SHUT_WR), both directions are now shut', local, null, 'our FIN');
      const atClose = step();
      return s.finish({
        bytesRead,
        bytesLeft: sent - bytesRead,
        stalled: !eof,
        counts: { atData, atFin, afterEof: `${afterEof} of ${p.waits}`, atClose },
      });
    });
  },

  conclude(traces): string[] {
    const lines = describeGroups(traces, (t) => {
      const c = t.summary.counts;
      if (t.summary.stalled) return `reported the data (${c.atData}) and then nothing: the FIN went unseen`;
      return `showed the FIN as ${c.atFin}, reported it again on ${c.afterEof} later waits, and both ` +
        `directions shut as ${c.atClose}`;
    });
    const has = (t: Trace, moment: string, name: EventName): boolean =>
      String(t.summary.counts[moment]).split('|').includes(name);
    const seen = traces.filter((t) => !t.summary.error && !t.summary.stalled);
    if (seen.some((t) => t.variant.rdhup && has(t, 'atFin', 'RDHUP')) && seen.every((t) => t.variant.rdhup || !has(t, 'atFin', 'RDHUP'))) {
      lines.push('Only the watchers that asked for RDHUP could tell "the peer finished sending" from "data to read" ' +
        'without calling recv; the others saw plain IN and learned of the FIN when recv returned 0.');
    }
    const withHup = seen.filter((t) => t.variant.mechanism !== 'select');
    if (withHup.length && withHup.every((t) => !has(t, 'atFin', 'HUP') && has(t, 'atClose', 'HUP'))) {
      lines.push('HUP did not come with the FIN (a half-closed connection is still open for sending); it came once ' +
        'both directions were shut.' + (seen.length > withHup.length ? ' select has no HUP: it only says readable.' : ''));
    }
    return lines;
  },
};

