/** The targets, checked against one run's results (ratios from the same run, never absolute times). */
import { EchoResult, EchoRow, EchoServerName, isCapped } from './echo';
import type { FilesResult } from './files';
import { FTP_STEPS, FtpResult, stepRatio, THROUGHPUT_STEPS, wholeRatio } from './ftp';
import type { ScalingResult, ScalingRow } from './scaling';
import { InterestResult, interestRow } from './interest';
import { ratio } from './stats';

export interface TargetCheck {
  target: string;
  /** The measured ratio, or null when the run did not cover it. */
  value: number | null;
  /** 'min': value must be at least `threshold`; 'max': at most. */
  kind: 'min' | 'max';
  threshold: number;
  met: boolean | null;
  detail: string;
  /** How value and threshold read: '×' (a ratio, the default) or a unit such as 'MiB'. */
  unit?: string;
}

function check(target: string, value: number | null, kind: 'min' | 'max', threshold: number, detail: string): TargetCheck {
  const met = value === null ? null : kind === 'min' ? value >= threshold : value <= threshold;
  return { target, value, kind, threshold, met, detail };
}

export function checkTargets(scaling: ScalingResult | null, echo: EchoResult | null, files: FilesResult | null = null,
  interest: InterestResult | null = null): TargetCheck[] {
  const checks: TargetCheck[] = [];
  if (scaling) {
    const row = (mechanism: string, n: number, a: number): ScalingRow | undefined =>
      scaling.rows.find((r) => r.mechanism === mechanism && r.n === n && r.a === a);
    const growth = (mechanism: string) => ratio(row(mechanism, 10000, 1)?.js?.waitNs.median, row(mechanism, 100, 1)?.js?.waitNs.median);
    checks.push(check('poll wait, N=10000 / N=100 (A=1, iomux)', growth('poll'), 'min', 20,
      'the classic picture: poll scans every descriptor on every call'));
    checks.push(check('epoll wait, N=10000 / N=100 (A=1, iomux, level-triggered)', growth('epoll-lt'), 'max', 2,
      'epoll costs what is ready, not what is watched'));
    checks.push(check('iomux epoll round / C epoll round (N=10000, A=1)', row('epoll-lt', 10000, 1)?.roundJsToC ?? null, 'max', 1.5,
      'what going through JavaScript costs per round'));
    if (scaling.rows.some((r) => r.mechanism === 'io_uring' && r.js !== null)) {
      const roundGrowth = ratio(row('io_uring', 10000, 1)?.js?.roundNs.median, row('io_uring', 100, 1)?.js?.roundNs.median);
      checks.push(check('io_uring round, N=10000 / N=100 (A=1, iomux)', roundGrowth, 'max', 2,
        'flat in N like epoll (the round: its wait finds completions in the ring without a system call)'));
    }
  }
  if (echo) {
    const row = (server: EchoServerName, connections = 100) =>
      echo.rows.find((r) => r.server === server && r.connections === connections && r.size === 64);
    const capped = (...rows: (EchoRow | undefined)[]) => (rows.some((r) => r && isCapped(r)) ? ' (capped: the load generator was the limit)' : '');
    for (const server of ['iomux-epoll', 'iomux-epoll-queued'] as const) {
      const r = row(server);
      if (!r && server !== 'iomux-epoll') continue;
      checks.push(check(`${server} msgs/s / Node net (C=100, S=64)`, r?.toNode ?? null, 'min', 1.2,
        `throughput against the everyday baseline${capped(r, row('node'))}`));
      checks.push(check(`${server} CPU per msg / Node net (C=100, S=64)`, r?.cpuToNode ?? null, 'max', 0.85, 'server CPU time per echoed message'));
      checks.push(check(`${server} msgs/s / C ceiling (C=100, S=64)`, r?.toCeiling ?? null, 'min', 0.7,
        `against a small C epoll server${capped(r, row('c'))}`));
    }
    // Attached mode (inside Node's event loop) should cost what blocking costs, at low and high load.
    for (const connections of [1, 100]) {
      const attached = row('iomux-epoll-attached', connections);
      const blocking = row('iomux-epoll', connections);
      checks.push(check(`iomux-epoll-attached CPU per msg / iomux-epoll (blocking) (C=${connections}, S=64)`,
        ratio(attached?.serverCpuNsPerMessage.median, blocking?.serverCpuNsPerMessage.median), 'max', 1.1,
        'the price of living inside Node\'s event loop'));
    }
    // One message in flight, where embedded servers live: no slower and no costlier than Node's net, in both modes.
    for (const server of ['iomux-epoll', 'iomux-epoll-attached'] as const) {
      const r = row(server, 1);
      const node = row('node', 1);
      checks.push(check(`${server} p50 latency / Node net (C=1, S=64)`, ratio(r?.p50Us.median, node?.p50Us.median), 'max', 1,
        'round trip of one message at low load'));
      checks.push(check(`${server} CPU per msg / Node net (C=1, S=64)`, r?.cpuToNode ?? null, 'max', 1,
        'server CPU time per message at low load'));
    }
  }
  if (echo && echo.syscalls.some((s) => s.server === 'iomux-io_uring')) {
    const total = (server: EchoServerName) => echo.syscalls.find((s) => s.server === server)?.totalPerMessage;
    checks.push(check('iomux-io_uring system calls per msg / iomux-epoll (C=100, S=64)',
      ratio(total('iomux-io_uring'), total('iomux-epoll')), 'max', 1, 'registration and wait in one io_uring_enter'));
  }
  if (files) {
    const row = (impl: string, direction: string) => files.rows.find((r) => r.impl === impl && r.direction === direction);
    const size = `${files.options.sizeMiB} MiB`;
    for (const direction of ['put', 'get'] as const) {
      const r = row('iomux', direction);
      checks.push(check(`iomux files ${direction} MB/s / Node stream.pipeline (${size})`, r?.toNode ?? null, 'min', 1.5,
        'against Node\'s idiomatic fs stream ⇄ net socket'));
      checks.push(check(`iomux files ${direction} MB/s / C sendfile pipe (${size})`, r?.toC ?? null, 'min', 0.8,
        'against the plain copy limit (which hashes nothing)'));
    }
    // The bound, read two ways: the process's peak as it is, and what the transfers added to
    // the idle server (as test/echo-memory.test.ts measures); Node itself and the hashing thread are
    // most of the first.
    const mib = (f: (m: FilesResult['memory'][number]) => number) => (files.memory.length > 0 ? Math.max(...files.memory.map(f)) / 2 ** 20 : null);
    checks.push({ ...check(`iomux files serve peak RSS (VmHWM) through a ${size} put and two gets`, mib((m) => m.peakBytes), 'max', 64,
      'the whole process: Node, the addon and the hashing thread included'), unit: 'MiB' });
    checks.push({ ...check(`iomux files serve peak RSS − RSS when listening (${size} put and two gets)`, mib((m) => m.peakBytes - m.baselineBytes),
      'max', 64, 'what the transfers added: the file is never buffered'), unit: 'MiB' });
  }
  if (interest) checks.push(...interestTargets(interest));
  return checks;
}

/** Interest churn: edge-triggered registered once must cost no epoll_ctl and no more CPU than level-triggered. */
function interestTargets(r: InterestResult): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const cpu = (server: EchoServerName, c: number, d = 1) => interestRow(r, server, c, d)?.cpuNsPerMessage.median;
  const c0 = Math.min(...r.options.connections);
  const etQueued = interestRow(r, 'iomux-epoll-et-queued', c0);
  checks.push(check(`iomux-epoll-et-queued epoll_ctl per msg (C=${c0}, D=1)`, etQueued?.epollCtlPerMessage ?? null, 'max', 0.05,
    '0 in steady state: IN|OUT registered once; what remains is one ADD and one DEL per connection'));
  for (const c of r.options.connections) {
    checks.push(check(`iomux-epoll-et-queued CPU per msg / iomux-epoll (C=${c}, D=1)`,
      ratio(cpu('iomux-epoll-et-queued', c), cpu('iomux-epoll', c)), 'max', 1,
      'the seed\'s strict separation, edge-triggered, against level-triggered direct writes'));
    checks.push(check(`iomux-epoll-et CPU per msg / iomux-epoll (C=${c}, D=1)`,
      ratio(cpu('iomux-epoll-et', c), cpu('iomux-epoll', c)), 'max', 1, 'edge- against level-triggered, both writing directly'));
  }
  const deep = r.options.deepDepth;
  const batched = interestRow(r, 'iomux-epoll-queued', c0, deep)?.epollCtlPerMessage;
  const unbatched = interestRow(r, 'iomux-epoll-queued-unbatched', c0, deep)?.epollCtlPerMessage;
  checks.push(check(`iomux-epoll-queued epoll_ctl per msg, batched / unbatched (C=${c0}, D=${deep})`, ratio(batched, unbatched), 'max', 0.9,
    'interest changes applied just before the wait: fewer (by a tenth at least, beyond noise) where a change is undone within a turn'));
  return checks;
}

/**
 * The FTP issue's targets: iomux-epoll at least pyftpdlib's and vsftpd's MB/s (and 1.5× ftp-srv's)
 * on every throughput step, no more than their time on every timed step, and no more memory per
 * idle client than pyftpdlib; on the whole-file transfers, with every client, at least their MB/s
 * and no more CPU per MB.
 */
export function checkFtpTargets(ftp: FtpResult | null): TargetCheck[] {
  if (!ftp) return [];
  const checks: TargetCheck[] = [];
  const measured = (server: string) => ftp.runs.some((r) => r.server === server) || (ftp.whole?.cells.some((c) => c.server === server) ?? false);
  const peers = (['pyftpdlib', 'vsftpd'] as const).filter(measured);
  for (const step of FTP_STEPS) {
    const throughput = THROUGHPUT_STEPS.includes(step);
    for (const [other, needed] of [...peers.map((p) => [p, 1] as const), ['ftp-srv', throughput ? 1.5 : 1] as const]) {
      checks.push(check(`FTP ${step}: iomux-epoll ${throughput ? 'MB/s' : 'time'} / ${other}`, stepRatio(ftp, step, other),
        throughput ? 'min' : 'max', needed, throughput ? 'one client\'s transfer rate' : `${ftp.options.clients} clients at once`));
    }
  }
  const perClient = (server: string) => ftp.runs.find((r) => r.server === server)?.rssPerIdleClientKiB;
  checks.push(check('FTP RSS per idle client: iomux-epoll / pyftpdlib', ratio(perClient('iomux-epoll'), perClient('pyftpdlib')), 'max', 1,
    '(RSS after login − RSS before) / N'));
  // Whole files: against the better of the two peers in each cell (the table has both ratios).
  for (const cell of ftp.whole?.cells.filter((c) => c.server === 'iomux-epoll') ?? []) {
    const what = `FTP whole-file ${cell.direction.toUpperCase()} with ${cell.client}: iomux-epoll`;
    const against = (metric: 'mbPerSec' | 'cpuMsPerMB') => {
      const ratios = peers.map((p) => wholeRatio(ftp, cell.client, cell.direction, metric, p));
      if (ratios.length === 0 || ratios.some((r) => r === null)) return null;
      return metric === 'mbPerSec' ? Math.min(...(ratios as number[])) : Math.max(...(ratios as number[]));
    };
    checks.push(check(`${what} MB/s / the faster of ${peers.join(', ')}`, against('mbPerSec'), 'min', 1, 'medians of interleaved rounds'));
    checks.push(check(`${what} CPU per MB / the cheaper of ${peers.join(', ')}`, against('cpuMsPerMB'), 'max', 1, 'the server\'s own cost'));
  }
  return checks;
}
