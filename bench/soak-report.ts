/** The soak part's tables, CSV files and chart (bench/soak.ts measures). */
import type * as vl from 'vega-lite';
import { num, TableData } from './report';
import type { SoakResult, SoakSample } from './soak';
import { groupBy } from './stats';

const mib = (bytes: number) => num(bytes / 2 ** 20);
const us = (x: number) => (x >= 0 ? num(x) : '–');

export function soakTables(r: SoakResult): TableData[] {
  const o = r.options;
  const hold: TableData = {
    title: `Soak: ${o.connections.toLocaleString('en-US')} connections held ${o.holdMs / 1000} s, one ${o.size} B echo per connection every ${o.intervalMs} ms`,
    head: ['server', `p99 µs, C=${o.baselineConnections}`, `p99 µs, C=${o.connections}`, 'ratio', `p50 µs, C=${o.connections}`, 'echoes', 'late turns',
      'connect ms', 'RSS MiB listening / holding (max)', 'fds listening / holding (max) / after', 'errors'],
    rows: r.runs.map(({ server, hold: h }) => {
      return [server, us(h.baseline.latencyUs.p99), us(h.hold.latencyUs.p99),
        h.baseline.latencyUs.p99 > 0 ? `${num(h.hold.latencyUs.p99 / h.baseline.latencyUs.p99)}×` : '–', us(h.hold.latencyUs.p50),
        h.hold.messages.toLocaleString('en-US'), h.hold.late.toLocaleString('en-US'), num(h.hold.connectMs),
        `${mib(h.listening.rssBytes)} / ${mib(h.holding.rssBytes)}`, `${h.listening.fds} / ${h.holding.fds} / ${h.closed.fds}`, String(h.baseline.errors + h.hold.errors)];
    }),
  };
  // One row per server, phase and 5 s window: the sample with the worst p99 in it (the last, in the churn), so a stall shows.
  const windowed = r.runs.flatMap(({ server, hold: h, churn: c }) => [...groupBy([...h.samples, ...c.samples],
    (x) => `${x.phase}|${Math.floor(x.elapsedMs / 5000)}`).values()].map((group) => ({ server,
    s: group.reduce((worst, x) => (x.phase === 'churn' ? x : (x.p99Us ?? -1) > (worst.p99Us ?? -1) ? x : worst)) })));
  const tcp = (x: SoakSample) => (x.tcp ? `${x.tcp.retransSegs} / ${x.tcp.timeouts}` : '');
  const samples: TableData = {
    title: `Soak: the server over time (every ${o.sampleMs / 1000} s; shown: the worst second of each 5 s of a hold, the last of the churn's)`,
    head: ['server', 'phase', 's', 'echoes', 'p99 µs', 'slowest µs', 'late', 'loadgen lag µs', 'TCP retrans / RTO', 'cycles', 'RSS MiB', 'fds'],
    rows: windowed.map(({ server, s: x }) => [server,
      x.phase === 'baseline' ? `hold C=${o.baselineConnections}` : x.phase === 'hold' ? `hold C=${o.connections}` : 'churn',
      num(x.elapsedMs / 1000), x.messages?.toLocaleString('en-US') ?? '', x.p99Us !== undefined ? us(x.p99Us) : '',
      x.maxUs !== undefined ? us(x.maxUs) : '', x.late?.toLocaleString('en-US') ?? '', x.sendLagMaxUs !== undefined ? us(x.sendLagMaxUs) : '',
      tcp(x), x.cycles?.toLocaleString('en-US') ?? '', mib(x.rssBytes), String(x.fds)]),
  };
  const churn: TableData = {
    title: `Churn: ${o.cycles.toLocaleString('en-US')} connect → ${o.size} B echo → close cycles, ${o.parallel} in parallel, after ${o.warmupCycles.toLocaleString('en-US')} warm-up cycles`,
    head: ['server', 'cycles/s', 'seconds', 'p50 / p99 cycle µs', 'RSS MiB listening / after warm-up / after', 'RSS after / after warm-up',
      'fds listening / after warm-up / after', 'errors'],
    rows: r.runs.map(({ server, churn: c }) => [server, num(c.run.cyclesPerSec), num(c.run.seconds), `${us(c.run.cycleUs.p50)} / ${us(c.run.cycleUs.p99)}`,
      `${mib(c.listening.rssBytes)} / ${mib(c.afterWarmup.rssBytes)} / ${mib(c.after.rssBytes)}`,
      `${num(c.after.rssBytes / c.afterWarmup.rssBytes)}×`, `${c.listening.fds} / ${c.afterWarmup.fds} / ${c.after.fds}`,
      String(c.warmup.errors + c.run.errors)]),
  };
  return [hold, churn, samples];
}

function csvCell(value: unknown): string {
  if (value == null) return '';
  const text = typeof value === 'number' ? (Number.isFinite(value) ? String(Math.round(value * 1000) / 1000) : '') : String(value);
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csv(header: string[], head: string[], rows: unknown[][]): string {
  return [...header.map((h) => `# ${h}`), head.join(','), ...rows.map((row) => row.map(csvCell).join(','))].join('\n') + '\n';
}

/** soak.csv (one row per server) and soak-samples.csv (the server's RSS and descriptors over time). */
export function soakCsvFiles(r: SoakResult, header: string[]): Record<string, string> {
  const summary = r.runs.map(({ server, hold: h, churn: c }) => [server, r.options.connections, h.baseline.latencyUs.p99, h.hold.latencyUs.p99,
    h.hold.latencyUs.p50, h.hold.messages, h.hold.late, h.listening.rssBytes, h.holding.rssBytes, h.listening.fds, h.holding.fds, h.closed.fds,
    c.run.completed, c.run.cyclesPerSec, c.run.cycleUs.p99, c.listening.rssBytes, c.afterWarmup.rssBytes, c.after.rssBytes,
    c.listening.fds, c.afterWarmup.fds, c.after.fds,
    h.baseline.errors + h.hold.errors + c.warmup.errors + c.run.errors,
    [h.baseline, h.hold, c.warmup, c.run].reduce((sum, x) => sum + x.bytesSent - x.bytesVerified, 0)]);
  const samples = r.runs.flatMap(({ server, hold: h, churn: c }) => [...h.samples, ...c.samples].map((s) => [server, s.phase,
    s.phase === 'baseline' ? r.options.baselineConnections : s.phase === 'hold' ? r.options.connections : r.options.parallel,
    s.elapsedMs, s.messages, s.p99Us, s.maxUs, s.late, s.sendLagMaxUs, s.tcp?.retransSegs, s.tcp?.timeouts, s.tcp?.listenDrops, s.cycles, s.rssBytes, s.fds]));
  return {
    'soak.csv': csv(header, ['server', 'connections', 'p99_us_baseline', 'p99_us_hold', 'p50_us_hold', 'echoes_hold', 'late_hold',
      'rss_listening', 'rss_holding', 'fds_listening', 'fds_holding', 'fds_after_hold', 'churn_cycles', 'cycles_per_sec', 'cycle_p99_us',
      'rss_churn_listening', 'rss_after_warmup', 'rss_after_churn', 'fds_churn_listening', 'fds_after_warmup', 'fds_after_churn',
      'errors', 'bytes_lost'], summary),
    'soak-samples.csv': csv(header, ['server', 'phase', 'connections', 'elapsed_ms', 'echoes', 'p99_us', 'max_us', 'late', 'loadgen_lag_us',
      'tcp_retrans_segs', 'tcp_timeouts', 'listen_drops', 'cycles', 'rss_bytes', 'fds'], samples),
  };
}

/** RSS and descriptors over time, a column per phase, a line per server. */
export function soakChartSpec(r: SoakResult, subtitle: string[]): vl.TopLevelSpec {
  const values: object[] = [];
  const phases = [`hold: ${r.options.connections.toLocaleString('en-US')} connections`, `churn: ${r.options.cycles.toLocaleString('en-US')} cycles`];
  for (const { server, hold, churn } of r.runs) {
    for (const s of [...hold.samples.filter((x) => x.phase === 'hold'), ...churn.samples]) {
      const phase = phases[s.phase === 'hold' ? 0 : 1];
      values.push({ server, phase, seconds: s.elapsedMs / 1000, metric: 'RSS (MiB)', value: s.rssBytes / 2 ** 20 });
      values.push({ server, phase, seconds: s.elapsedMs / 1000, metric: 'open descriptors', value: s.fds });
    }
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: 'Soak: the server\'s memory and descriptors over time', subtitle },
    data: { values },
    facet: {
      row: { field: 'metric', type: 'nominal', title: null },
      column: { field: 'phase', type: 'nominal', title: null, sort: phases },
    },
    spec: {
      width: 320,
      height: 160,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'seconds', type: 'quantitative', title: 'seconds' },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: true } },
        color: { field: 'server', type: 'nominal' },
      },
    },
    resolve: { scale: { y: 'independent', x: 'independent' } },
  };
}

/**
 * The p99 of the echoes in each sample interval over time, the reference (C = 100) and the hold
 * (C = 10,000) side by side, a line per server, on a log scale: a stall shows as a spike, not averaged away.
 */
export function soakLatencySpec(r: SoakResult, subtitle: string[]): vl.TopLevelSpec {
  const phases = [`reference: ${r.options.baselineConnections.toLocaleString('en-US')} connections`,
    `hold: ${r.options.connections.toLocaleString('en-US')} connections`];
  const values: object[] = [];
  const P99 = 'p99 of the echoes';
  const LAG = 'the load generator\'s own lag';
  for (const { server, hold } of r.runs) {
    for (const s of hold.samples) {
      if (s.p99Us === undefined || !(s.p99Us > 0)) continue;
      const at = { server, phase: phases[s.phase === 'baseline' ? 0 : 1], seconds: s.elapsedMs / 1000 };
      values.push({ ...at, series: P99, ms: s.p99Us / 1000 });
      if (s.sendLagMaxUs !== undefined && s.sendLagMaxUs > 0) values.push({ ...at, series: LAG, ms: s.sendLagMaxUs / 1000 });
    }
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: `Soak: p99 echo latency in each ${r.options.sampleMs / 1000} s interval (solid), and how late the load generator itself sent (dashed)`, subtitle },
    data: { values },
    facet: { column: { field: 'phase', type: 'nominal', title: null, sort: phases } },
    spec: {
      width: 340,
      height: 200,
      mark: { type: 'line', point: { size: 12 } },
      encoding: {
        x: { field: 'seconds', type: 'quantitative', title: 'seconds since every connection was up' },
        y: { field: 'ms', type: 'quantitative', title: 'ms (log)', scale: { type: 'log' } },
        color: { field: 'server', type: 'nominal' },
        strokeDash: { field: 'series', type: 'nominal', title: null, sort: [P99, LAG],
          legend: { symbolType: 'stroke', symbolStrokeWidth: 2, symbolSize: 400, labelLimit: 300,
            encode: { symbols: { update: { stroke: { value: '#333' } } } } } },
      },
    },
    resolve: { scale: { x: 'independent' } },
  } as vl.TopLevelSpec;
}
