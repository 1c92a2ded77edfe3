/** The threads part's tables, CSV and targets (ratios from one run, never absolute numbers). */
import { isCapped } from './echo';
import type { TableData } from './report';
import { num, spreadText } from './format';
import { ratio } from './stats';
import type { TargetCheck } from './targets';
import { maxOverMin, scalingAgainstC, ThreadsResult, threadsRow, ThreadsServerKind } from './threads';

const percent = (x: number | null | undefined) => (x == null || !Number.isFinite(x) ? '–' : `${Math.round(x * 100)}%`);
const times = (x: number | null | undefined) => (x == null || !Number.isFinite(x) ? '–' : `${x.toFixed(2)}×`);

export function threadsTable(r: ThreadsResult): TableData {
  const rows = r.rows.map((row) => {
    const one = threadsRow(r, row.kind === 'iomux-exclusive-kernel' ? 'iomux-exclusive' : row.kind, 1, row.connections);
    const c1 = threadsRow(r, 'c', 1, row.connections);
    const capped = isCapped({ boundBy: row.boundBy });
    return [
      row.server, String(row.connections),
      spreadText(row.serverCpuNsPerMessage, 1e-3),
      `${spreadText(row.messagesPerSec)}${capped ? ' capped' : ''}`,
      spreadText(row.p50Us),
      percent(row.serverCpuShare), row.taskShares.map(percent).join(' / ') || '–', percent(row.loadgenCpuShare), row.boundBy,
      row.threads > 1 && one ? times(ratio(row.serverCpuNsPerMessage.median, one.serverCpuNsPerMessage.median)) : '',
      row.threads > 1 && one ? times(ratio(row.messagesPerSec.median, one.messagesPerSec.median)) : '',
      c1 ? times(ratio(row.messagesPerSec.median, c1.messagesPerSec.median)) : '–',
    ];
  });
  return {
    title: `Threads: echo on 1 and N threads (D=${r.options.depth}, S=${r.options.size}; median, min–max)`,
    head: ['server', 'C', 'CPU µs/msg', 'msgs/s', 'p50 µs', 'server CPU', 'per thread', 'loadgen CPU', 'bound by', 'CPU/msg vs 1', 'msgs/s vs 1', '/ c-1'],
    rows,
    footer: ['per thread: each serving thread\'s share of one core over the window (cluster: each worker, then the primary)'],
  };
}

export function distributionTable(r: ThreadsResult): TableData {
  const rows = r.rows.filter((row) => row.threads > 1).map((row) => [
    row.server, String(row.connections),
    row.connectionsPerThread.join(' / ') || '–', times(row.connectionSpread),
    row.messagesPerThread.map((m) => num(m)).join(' / ') || '–', times(row.messageSpread),
  ]);
  return {
    title: 'Threads: how evenly connections and messages spread (per thread, last repetition; max/min, median over repetitions)',
    head: ['server', 'C', 'connections per thread', 'max/min', 'messages per thread', 'max/min'],
    rows,
  };
}

export function costTable(r: ThreadsResult): TableData | null {
  const c = r.costs;
  if (!c) return null;
  const kib = (bytes: number) => `${num(bytes / 1024)} KiB`;
  return {
    title: 'Threads or a multiplexer? What one connection costs (median, min–max)',
    head: ['cost', 'ThreadingServer (a worker thread per connection)', 'reactor (a Connection on one thread)'],
    rows: [
      ['start a worker thread (new Worker → handler loaded)', `${spreadText(c.workerStartupMs)} ms`, '–'],
      ['  of which Node\'s own (an empty worker)', c.emptyWorkerStartupMs ? `${spreadText(c.emptyWorkerStartupMs)} ms` : '–', '–'],
      ['connect → first echo, the pool grows (a new worker)', `${spreadText(c.coldConnectMs)} ms`, '–'],
      ['connect → first echo, an idle worker / the reactor', `${spreadText(c.warmConnectUs)} µs`, `${spreadText(c.reactorConnectUs)} µs`],
      ['memory per open connection (server RSS)', kib(c.workerBytesPerConnection), kib(c.reactorBytesPerConnection)],
    ],
    aligns: ['left', 'right', 'right'],
  };
}

function check(target: string, value: number | null, kind: 'min' | 'max', threshold: number, detail: string): TargetCheck {
  const met = value === null ? null : kind === 'min' ? value >= threshold : value <= threshold;
  return { target, value, kind, threshold, met, detail };
}

/** The four scaling criteria, for N = the largest count against 1, at every C measured. */
export function checkThreadTargets(r: ThreadsResult | null): TargetCheck[] {
  if (!r) return [];
  const n = Math.max(...r.options.counts);
  if (n < 2 || !r.options.counts.includes(1)) return [];
  const checks: TargetCheck[] = [];
  const balances: ThreadsServerKind[] = ['iomux-reuseport', 'iomux-exclusive'];
  for (const connections of r.options.connections) {
    for (const kind of balances) {
      const name = `iomux-${n}-${kind.slice(6)}`;
      const one = threadsRow(r, kind, 1, connections);
      const many = threadsRow(r, kind, n, connections);
      checks.push(check(`${name} CPU per msg / iomux-1 (C=${connections})`,
        ratio(many?.serverCpuNsPerMessage.median, one?.serverCpuNsPerMessage.median), 'max', 1.1, 'threads cost no coordination'));
      checks.push(check(`${name}: iomux 1 → ${n} msgs/s / C server 1 → ${n} (C=${connections})`, scalingAgainstC(r, kind, n, connections), 'min', 0.9,
        'scales as well as the C server does on the same cores'));
      const cluster = threadsRow(r, 'node-cluster', n, connections);
      checks.push(check(`${name} msgs/s / node-cluster-${n} (C=${connections})`, ratio(many?.messagesPerSec.median, cluster?.messagesPerSec.median), 'min', 1.2,
        `against Node's own answer${many && cluster && (isCapped(many) || isCapped(cluster)) ? ' (capped: the load generator was the limit)' : ''}`));
      checks.push(check(`${name} CPU per msg / node-cluster-${n} (C=${connections})`,
        ratio(many?.serverCpuNsPerMessage.median, cluster?.serverCpuNsPerMessage.median), 'max', 0.85, 'server CPU time per message, all processes'));
    }
  }
  if (r.options.connections.includes(1000)) {
    for (const kind of balances) {
      const row = threadsRow(r, kind, n, 1000);
      checks.push(check(`iomux-${n}-${kind.slice(6)} connections per thread, max/min (C=1000)`, row?.connectionSpread ?? null, 'max', 1.5,
        'the balance mode spreads connections'));
    }
  }
  return checks;
}

export function threadsCsv(r: ThreadsResult): string[][] {
  const head = ['server', 'kind', 'threads', 'connections', 'msgs_per_sec_median', 'msgs_per_sec_min', 'msgs_per_sec_max',
    'server_cpu_us_per_msg_median', 'server_cpu_us_per_msg_min', 'server_cpu_us_per_msg_max', 'p50_us', 'server_cpu_share',
    'loadgen_cpu_share', 'bound_by', 'thread_shares', 'connections_per_thread', 'connection_max_over_min', 'messages_per_thread', 'message_max_over_min'];
  const rows = r.rows.map((row) => [
    row.server, row.kind, String(row.threads), String(row.connections),
    ...[row.messagesPerSec.median, row.messagesPerSec.min, row.messagesPerSec.max].map((x) => String(Math.round(x))),
    ...[row.serverCpuNsPerMessage.median, row.serverCpuNsPerMessage.min, row.serverCpuNsPerMessage.max].map((x) => (x / 1000).toFixed(3)),
    row.p50Us.median.toFixed(1), row.serverCpuShare.toFixed(3), row.loadgenCpuShare.toFixed(3), row.boundBy,
    row.taskShares.map((x) => x.toFixed(3)).join(' '), row.connectionsPerThread.join(' '), row.connectionSpread?.toFixed(3) ?? '',
    row.messagesPerThread.join(' '), row.messageSpread?.toFixed(3) ?? '',
  ]);
  return [head, ...rows];
}

export { maxOverMin };
