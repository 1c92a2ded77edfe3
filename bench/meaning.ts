/**
 * "What this means": a few sentences per part of a run, for report.html, written from that run's own
 * numbers (ratios between cells measured side by side). A sentence whose cells the run did not
 * measure is left out, never filled in.
 */
import type { EchoResult, EchoRow, EchoServerName } from './echo';
import type { FilesResult } from './files';
import type { InterestResult } from './interest';
import { interestRow } from './interest';
import type { MicroResult } from './micro';
import type { ReportSection } from './report';
import type { ScalingResult } from './scaling';
import type { SoakResult } from './soak';
import { num } from './format';
import { ratio } from './stats';
import type { SuiteResult } from './suite';
import { countingTool } from './syscalls';
import type { ThreadsResult } from './threads';
import { threadsRow } from './threads';

const times = (x: number | null | undefined) => (x == null || !Number.isFinite(x) ? null : `${num(x)}×`);
const us = (ns: number | null | undefined) => (ns == null || !Number.isFinite(ns) ? null : `${num(ns / 1000)} µs`);
/** Joins the parts that were measured; null when none was. */
const sentence = (parts: (string | null | false | undefined)[], glue = '; '): string | null => {
  const kept = parts.filter((p): p is string => typeof p === 'string' && p !== '');
  return kept.length > 0 ? kept.join(glue) : null;
};

function scaling(r: ScalingResult): string[] {
  const lines: (string | null)[] = [];
  const js = r.rows.filter((row) => row.a === 1 && row.js);
  const ns = [...new Set(js.map((row) => row.n))].sort((a, b) => a - b);
  if (ns.length >= 2) {
    // From N = 100 where the sweep has it (N = 10 is all fixed cost), to the largest N.
    const [low, high] = [ns.includes(100) && ns[ns.length - 1] > 100 ? 100 : ns[0], ns[ns.length - 1]];
    const growth = (mechanism: string) => {
      const at = (n: number) => js.find((row) => row.mechanism === mechanism && row.n === n)?.js?.waitNs.median;
      const g = ratio(at(high), at(low));
      return g === null ? null : `${mechanism} ${times(g)}`;
    };
    const grown = sentence(['poll', 'select', 'epoll-lt', 'epoll-et', 'io_uring'].map(growth), ', ');
    if (grown) lines.push(`From N = ${low} to N = ${high} watched descriptors (one ready per round) the wait call grew: ${grown}.`);
    lines.push('poll and select hand the kernel every descriptor on every call, so their cost follows what is watched; epoll and ' +
      'io_uring keep the interest set in the kernel, so theirs follows what is ready.');
    const round = js.find((row) => row.mechanism === 'epoll-lt' && row.n === high)?.roundJsToC;
    if (round != null) lines.push(`Through iomux an epoll round at N = ${high} cost ${times(round)} the same loop in C: the difference is the calls crossing into the addon.`);
  }
  return lines.filter((l): l is string => l !== null);
}

function micro(r: MicroResult): string[] {
  const crossings = r.rows.map((row) => row.overheadNs).filter((x): x is number => x !== null && Number.isFinite(x));
  const cNs = r.rows.map((row) => row.cNs?.median).filter((x): x is number => x !== undefined && Number.isFinite(x));
  if (crossings.length === 0 || cNs.length === 0) return [];
  return [`One trivial system call cost ${num(Math.min(...cNs))}–${num(Math.max(...cNs))} ns from C on this machine, and going through the ` +
    `addon added ${num(Math.min(...crossings))}–${num(Math.max(...crossings))} ns to it. A server that makes the same calls as a C server ` +
    'pays that crossing per call, which is what the echo part\'s ratios to C are made of.'];
}

function echo(r: EchoResult): string[] {
  const lines: string[] = [];
  const cs = [...new Set(r.rows.map((row) => row.connections))].sort((a, b) => a - b);
  const size = Math.min(...r.rows.map((row) => row.size));
  const row = (server: EchoServerName, c: number): EchoRow | undefined => r.rows.find((x) => x.server === server && x.connections === c && x.size === size);
  const high = cs[cs.length - 1];
  const c = row('c', high);
  if (c) {
    const others = (['iomux-epoll', 'c-uring', 'py-select', 'py-asyncio', 'node'] as const).map((server) => {
      const x = times(ratio(row(server, high)?.serverCpuNsPerMessage.median, c.serverCpuNsPerMessage.median));
      return x && `${server} ${x}`;
    });
    const list = sentence(others, ', ');
    if (list) {
      lines.push(`At C = ${high} (S = ${size} B) the C epoll server spent ${us(c.serverCpuNsPerMessage.median)} of CPU per message, and the others, ` +
        `as a multiple of that: ${list}. The C server does nothing in user space but call recv and send, so its figure is ` +
        'almost all the kernel\'s TCP work on loopback: the floor every server pays. Where a server sits close to 1×, its ' +
        'own code adds little; the rest of its cost is its user-space path.');
    }
  }
  const low = cs[0];
  if (low !== high || cs.length === 1) {
    const lat = (['c', 'iomux-epoll', 'node', 'py-select', 'py-asyncio', 'c-uring'] as const).map((server) => {
      const x = row(server, low);
      return x ? `${server} ${num(x.p50Us.median)} µs` : null;
    });
    const list = sentence(lat, ', ');
    if (list && low === 1) {
      lines.push(`With one message in flight (C = 1) every message pays a wake-up from idle, and the user-space path shows: p50 round trip ${list}.`);
    }
  }
  if (r.syscalls.length > 0) {
    // A readiness server's calls are a recv, a send and a share of a wait; one with more of other calls is named apart.
    const named = (s: (typeof r.syscalls)[number]) => Object.entries(s.perMessage)
      .filter(([name]) => /^(recv|read|send|write|epoll|poll|ppoll|select|pselect)/.test(name)).reduce((sum, [, n]) => sum + n, 0);
    const readinessAll = r.syscalls.filter((s) => s.server !== 'c-uring');
    const plain = readinessAll.filter((s) => s.totalPerMessage - named(s) <= 0.5).map((s) => s.totalPerMessage);
    const apart = readinessAll.filter((s) => s.totalPerMessage - named(s) > 0.5)
      .map((s) => `${s.server} ${num(s.totalPerMessage)}, of which ${num(s.totalPerMessage - named(s))} other calls`);
    const uring = r.syscalls.find((s) => s.server === 'c-uring');
    const tool = countingTool(r.syscalls) === 'perf' ? 'perf\'s counters' : 'strace (which slows servers and changes their batching)';
    const readinessText = plain.length > 0 ? `readiness servers made ${num(Math.min(...plain))}–${num(Math.max(...plain))} system calls per message (a recv and a send each, a wait shared by every connection ready at once)` +
      (apart.length > 0 ? ` (${apart.join('; ')})` : '') : null;
    const uringText = uring ? `the io_uring completion server ${num(uring.totalPerMessage)} (one io_uring_enter submits a turn's sends and collects its receives)` : null;
    const both = sentence([readinessText, uringText], ', and ');
    if (both) lines.push(`Counted by ${tool}, ${both}.`);
    const cUring = row('c-uring', high);
    const cCalls = r.syscalls.find((s) => s.server === 'c');
    const share = ratio(cUring?.serverCpuNsPerMessage.median, c?.serverCpuNsPerMessage.median);
    if (share !== null && uring && cCalls) {
      lines.push(`The io_uring server used ${times(share)} the C epoll server's CPU per message at C = ${high}, making ` +
        `${num(uring.totalPerMessage)} system calls per message against ${num(cCalls.totalPerMessage)}` +
        (share >= 0.85 ? ': fewer calls saved little, since on loopback the TCP work inside the calls, not entering the kernel, is most of the cost.' : '.'));
    }
  }
  return lines;
}

function interest(r: InterestResult): string[] {
  const c = Math.min(...r.options.connections);
  const cpu = (server: EchoServerName) => interestRow(r, server, c)?.cpuNsPerMessage.median;
  const ctl = (server: EchoServerName) => interestRow(r, server, c)?.epollCtlPerMessage;
  const queued = times(ratio(cpu('iomux-epoll-queued'), cpu('iomux-epoll')));
  const et = times(ratio(cpu('iomux-epoll-et-queued'), cpu('iomux-epoll')));
  const text = sentence([
    queued && `strict read/write separation (queued) cost ${queued} the CPU per message of direct writes at C = ${c}`,
    ctl('iomux-epoll-queued') != null && `with ${num(ctl('iomux-epoll-queued'))} epoll_ctl per message`,
    et && `edge-triggered with IN|OUT registered once brought it to ${et}`,
  ]);
  return text ? [`${text[0].toUpperCase()}${text.slice(1)}. Telling the kernel what you want costs a system call each time; registering once and writing at once avoids it.`] : [];
}

function files(r: FilesResult): string[] {
  const row = (direction: string) => r.rows.find((x) => x.impl === 'iomux' && x.direction === direction);
  const parts = (['put', 'get'] as const).map((d) => {
    const x = row(d);
    return x ? `${d} ${times(x.toNode) ?? '–'} Node's stream.pipeline and ${times(x.toC) ?? '–'} the C sendfile pipe` : null;
  });
  const text = sentence(parts);
  const rise = r.memory.length > 0 ? Math.max(...r.memory.map((m) => m.peakBytes - m.baselineBytes)) / 2 ** 20 : null;
  return text ? [`A ${r.options.sizeMiB} MiB file over loopback: iomux ${text}. iomux also checks a SHA-256 of every byte, which the pipes do not.` +
    (rise !== null ? ` The server's memory rose ${num(rise)} MiB through the transfers: the file is never buffered.` : '')] : [];
}

function threads(r: ThreadsResult): string[] {
  const lines: string[] = [];
  for (const c of r.options.connections) {
    const parts = (['iomux-reuseport', 'iomux-exclusive', 'c'] as const).map((kind) => {
      const x = times(ratio(threadsRow(r, kind, 2, c)?.serverCpuNsPerMessage.median, threadsRow(r, kind, 1, c)?.serverCpuNsPerMessage.median));
      return x && `${kind} ${x}`;
    });
    const text = sentence(parts, ', ');
    if (text) lines.push(`C = ${c}: two threads cost ${text} one thread's CPU per message.`);
  }
  if (lines.length > 0) lines.push('On two cores shared with the load generator more threads cannot go faster; what they must not do is cost more per message.');
  return lines;
}

function soak(r: SoakResult): string[] {
  return r.runs.map(({ server, hold, churn }) => {
    const stall = hold.samples.filter((s) => s.phase === 'hold' && s.p99Us !== undefined).reduce((max, s) => Math.max(max, s.p99Us!), 0);
    const errors = hold.baseline.errors + hold.hold.errors + churn.warmup.errors + churn.run.errors;
    return `${server}: p99 ${num(hold.hold.latencyUs.p99 / 1000)} ms holding ${r.options.connections.toLocaleString('en-US')} connections ` +
      `(${num(hold.baseline.latencyUs.p99 / 1000)} ms at ${r.options.baselineConnections}); the worst interval's p99 ${num(stall / 1000)} ms; ` +
      `RSS after the churn ${times(churn.after.rssBytes / churn.afterWarmup.rssBytes)} after its warm-up; ${errors} errors.`;
  });
}

function targets(r: SuiteResult): string[] {
  const measured = r.targets.filter((t) => t.met !== null);
  const missed = measured.filter((t) => t.met === false);
  if (measured.length === 0) return [];
  return [`${measured.length - missed.length} of ${measured.length} targets measured in this run were met` +
    (missed.length > 0 ? `; missed: ${missed.map((t) => t.target).join('; ')}.` : '.') +
    ' A target is a ratio between cells of this run, so it holds on another machine only as far as the ratio does.'];
}

/** What a part of this run means, in sentences drawn from its numbers (empty when it measured too little to say). */
export function meaning(r: SuiteResult, section: ReportSection): string[] {
  switch (section) {
    case 'scaling': return r.scaling ? scaling(r.scaling) : [];
    case 'micro': return r.micro ? micro(r.micro) : [];
    case 'echo': return r.echo ? echo(r.echo) : [];
    case 'interest': return r.interest ? interest(r.interest) : [];
    case 'files': return r.fileTransfer ? files(r.fileTransfer) : [];
    case 'threads': return r.threads ? threads(r.threads) : [];
    case 'soak': return r.soak ? soak(r.soak) : [];
    case 'targets': return targets(r);
    case 'ftp': return [];
  }
}
