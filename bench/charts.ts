/** SVG charts of a run, drawn with vega-lite (compiled to vega, rendered headless by vega's View). */
import type * as Vega from 'vega';
import type * as vl from 'vega-lite';
import { importPackage } from '../tools/optional';
import { CAPPED_SHARE, EchoResult, isCapped } from './echo';
import { countingTool } from './syscalls';
import { boundOf, ReportSection } from './report';
import type { ScalingResult } from './scaling';
import { FTP_STEPS, FtpResult, THROUGHPUT_STEPS } from './ftp';
import { ftpCpu, ftpStepLabel } from './ftp-report';
import type { SoakResult } from './soak';
import { soakChartSpec, soakLatencySpec } from './soak-report';

export interface Chart {
  /** File name under the output directory. */
  file: string;
  /** The part of the run it belongs to (where report.html shows it). */
  part: ReportSection;
  /** What it shows, in a line (report.html's caption and alt text). */
  caption: string;
  svg: string;
}

type Spec = vl.TopLevelSpec;

export async function render(spec: Spec): Promise<string> {
  // Optional peers, ES modules from their major 6 on: loaded by a real import() (tools/optional.ts).
  const [vega, vl] = await Promise.all([importPackage<typeof Vega>('vega'), importPackage<typeof import('vega-lite')>('vega-lite')]);
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const logAxis = (title: string) => ({ type: 'quantitative' as const, title, scale: { type: 'log' as const }, axis: { grid: true } });

/** A log x axis that spans exactly the swept values and labels each of them. */
const sweptAxis = (field: string, title: string, values: number[]) => ({
  field, type: 'quantitative' as const, title,
  scale: { type: 'log' as const, nice: false, domain: [Math.min(...values), Math.max(...values)] },
  axis: { grid: true, values: [...new Set(values)].sort((a, b) => a - b), format: '~s' },
});

/** Time per round and wait time against N, log–log, a line per mechanism and implementation, a column per A. */
function scalingSpec(result: ScalingResult, subtitle: string[]): Spec {
  const values: object[] = [];
  for (const row of result.rows) {
    for (const [impl, summary] of [['iomux (JS)', row.js], ['C', row.c]] as const) {
      if (!summary) continue;
      for (const [metric, s] of [['time per round', summary.roundNs], ['wait call alone', summary.waitNs]] as const) {
        values.push({ mechanism: row.mechanism, impl, n: row.n, a: `A = ${row.a} active per round`, metric,
          us: s.median / 1000, min: s.min / 1000, max: s.max / 1000 });
      }
    }
  }
  const x = sweptAxis('n', 'N watched descriptors', result.rows.filter((r) => r.js || r.c).map((r) => r.n));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: 'Scaling: microseconds per round vs descriptors watched (median, bars: min–max)', subtitle },
    data: { values },
    facet: {
      row: { field: 'metric', type: 'nominal', title: null, sort: ['time per round', 'wait call alone'] },
      column: { field: 'a', type: 'nominal', title: null },
    },
    spec: {
      width: 300,
      height: 220,
      layer: [
        {
          mark: { type: 'line', point: true },
          encoding: {
            x, y: { field: 'us', ...logAxis('µs (log)') },
            color: { field: 'mechanism', type: 'nominal', title: 'mechanism' },
            strokeDash: { field: 'impl', type: 'nominal', title: 'loop', sort: ['iomux (JS)', 'C'],
              legend: { symbolType: 'stroke', symbolStrokeWidth: 2, symbolSize: 400,
                encode: { symbols: { update: { stroke: { value: '#333' } } } } } },
          },
        },
        {
          mark: { type: 'rule' },
          encoding: { x, y: { field: 'min', type: 'quantitative', scale: { type: 'log' } }, y2: { field: 'max' },
            color: { field: 'mechanism', type: 'nominal' } },
        },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  } as Spec;
}

const SERVER_BOUND = 'measured: the server\'s rate';
const CAPPED = `capped: load generator ≥ ${CAPPED_SHARE * 100} % busy`;

/**
 * One echo metric against connections, a line per server, a column per message size. On the
 * throughput chart a cell whose rate was capped by the load generator is drawn as a hollow
 * square, so no server seems to beat the C ceiling where the client was the limit.
 */
function echoSpec(result: EchoResult, subtitle: string[], metric: 'throughput' | 'cpu'): Spec {
  const values = result.rows.map((r) => {
    const s = metric === 'throughput' ? r.messagesPerSec : r.serverCpuNsPerMessage;
    const scale = metric === 'throughput' ? 1 : 1 / 1000;
    return { server: r.server, connections: r.connections, size: `S = ${r.size} B`, value: s.median * scale, min: s.min * scale, max: s.max * scale,
      rate: isCapped({ boundBy: boundOf(r) }) ? CAPPED : SERVER_BOUND };
  });
  const x = sweptAxis('connections', 'connections (C)', result.rows.map((r) => r.connections));
  const yTitle = metric === 'throughput' ? 'messages per second' : 'server CPU µs per message (lower is better)';
  const color = { field: 'server', type: 'nominal' as const, title: 'server' };
  const points = metric === 'throughput'
    ? { mark: { type: 'point', filled: true, size: 60 },
      encoding: { x, y: { field: 'value', type: 'quantitative' }, color,
        shape: { field: 'rate', type: 'nominal', title: 'msgs/s', scale: { domain: [SERVER_BOUND, CAPPED], range: ['circle', 'square'] } },
        fillOpacity: { condition: { test: `datum.rate === '${CAPPED}'`, value: 0 }, value: 1 } } }
    : { mark: { type: 'point', filled: true, size: 40 }, encoding: { x, y: { field: 'value', type: 'quantitative' }, color } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: {
      text: metric === 'throughput'
        ? 'Echo throughput vs connections (median, bars: min–max; hollow squares: capped by the load generator)'
        : 'Echo server CPU time per message vs connections (the server\'s own cost, whoever limited the rate)',
      subtitle,
    },
    data: { values },
    facet: { column: { field: 'size', type: 'nominal', title: null } },
    spec: {
      width: 340,
      height: 260,
      layer: [
        { mark: { type: 'line' }, encoding: { x, y: { field: 'value', type: 'quantitative', title: yTitle }, color } },
        points,
        { mark: { type: 'rule' },
          encoding: { x, y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' }, color } },
      ],
    },
  } as Spec;
}

/**
 * ftpbench's steps, a panel each (its own scale and unit), a bar per server: the steps' results
 * ('result': MB/s or seconds), or the server's own CPU for them ('cpu': ms per MB moved, or seconds),
 * which depends much less on how busy the machine was.
 */
function ftpSpec(result: FtpResult, subtitle: string[], metric: 'result' | 'cpu'): Spec {
  const values: object[] = [];
  for (const run of result.runs) {
    for (const step of run.steps) {
      const throughput = THROUGHPUT_STEPS.includes(step.step);
      const label = ftpStepLabel(step.step, result.options.clients);
      values.push({
        server: run.server, order: FTP_STEPS.indexOf(step.step),
        step: metric === 'result' ? label : label.replace(/\((MB\/)?s\)$/, throughput ? '(CPU ms per MB)' : '(CPU s)'),
        value: metric === 'result' ? (throughput ? step.mbPerSec : step.seconds) : ftpCpu(step),
      });
    }
  }
  const servers = result.runs.map((r) => r.server);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: {
      text: metric === 'result' ? 'FTP: ftpbench\'s steps per server (MB/s: higher is better; s: lower is better)'
        : 'FTP: the server\'s CPU time per step (lower is better; steadier than the rates on a busy machine)',
      subtitle,
    },
    data: { values },
    facet: { field: 'step', type: 'nominal', title: null, sort: { field: 'order' } },
    columns: 4,
    spec: {
      width: 170,
      height: 150,
      mark: { type: 'bar' },
      encoding: {
        x: { field: 'server', type: 'nominal', title: null, sort: servers, axis: { labelAngle: -40 } },
        y: { field: 'value', type: 'quantitative', title: null },
        color: { field: 'server', type: 'nominal', sort: servers, legend: null },
      },
    },
    resolve: { scale: { y: 'independent' } },
  } as Spec;
}

/** The calls an event loop is made of, each its own colour; the rest of a server's calls are "other". */
const SYSCALL_GROUPS: Record<string, string> = {
  recvfrom: 'recv', read: 'recv', recvmsg: 'recv', readv: 'recv',
  sendto: 'send', write: 'send', writev: 'send', sendmsg: 'send',
  epoll_wait: 'wait', epoll_pwait: 'wait', epoll_pwait2: 'wait', poll: 'wait', ppoll: 'wait', select: 'wait', pselect6: 'wait',
  epoll_ctl: 'epoll_ctl', io_uring_enter: 'io_uring_enter',
};
const SYSCALL_ORDER = ['recv', 'send', 'wait', 'epoll_ctl', 'io_uring_enter', 'other'];

/** System calls per echoed message, a stacked bar per server: readiness (a recv, a send, a share of a wait) against completion (io_uring_enter alone). */
function syscallSpec(result: EchoResult, subtitle: string[]): Spec {
  const values: object[] = [];
  for (const s of result.syscalls) {
    const groups = new Map<string, number>(SYSCALL_ORDER.map((g) => [g, 0]));
    let named = 0;
    for (const [name, perMessage] of Object.entries(s.perMessage)) {
      const group = SYSCALL_GROUPS[name];
      if (!group) continue;
      groups.set(group, groups.get(group)! + perMessage);
      named += perMessage;
    }
    groups.set('other', Math.max(0, s.totalPerMessage - named));
    for (const [call, perMessage] of groups) {
      if (perMessage > 0) values.push({ server: s.server, call, perMessage, order: SYSCALL_ORDER.indexOf(call) });
    }
  }
  const first = result.syscalls[0];
  const tool = countingTool(result.syscalls) === 'perf' ? 'perf stat syscall counters' : 'strace -c -f (slows the server: fewer calls batch)';
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: `System calls per echoed message (${tool}; C = ${first?.connections}, S = ${first?.size} B; lower is fewer)`, subtitle },
    data: { values },
    width: 520,
    height: { step: 22 },
    mark: { type: 'bar' },
    encoding: {
      y: { field: 'server', type: 'nominal', title: null, sort: result.syscalls.map((x) => x.server) },
      x: { field: 'perMessage', type: 'quantitative', title: 'system calls per message', stack: 'zero' },
      color: { field: 'call', type: 'nominal', title: 'call', sort: SYSCALL_ORDER, scale: { domain: SYSCALL_ORDER } },
      order: { field: 'order', type: 'quantitative' },
      tooltip: [{ field: 'server' }, { field: 'call' }, { field: 'perMessage', format: '.2f' }],
    },
  } as Spec;
}

/** The charts of a run; each subtitle names the machine and that part's exact parameters. */
export async function renderCharts(scaling: ScalingResult | null, echo: EchoResult | null,
  subtitles: { scaling: string[]; echo: string[]; ftp?: string[]; soak?: string[] }, ftp: FtpResult | null = null,
  soak: SoakResult | null = null): Promise<Chart[]> {
  const charts: Chart[] = [];
  if (scaling && scaling.rows.some((r) => r.js || r.c)) {
    charts.push({ file: 'scaling.svg', part: 'scaling', caption: 'Microseconds per round and per wait call against descriptors watched, per mechanism, iomux and C',
      svg: await render(scalingSpec(scaling, subtitles.scaling)) });
  }
  if (echo && echo.rows.length > 0) {
    // The server-bound figure first: CPU per message is the server's own cost at every C.
    charts.push({ file: 'echo-cpu.svg', part: 'echo', caption: 'Echo: the server\'s CPU time per message against connections, per server (lower is better)',
      svg: await render(echoSpec(echo, subtitles.echo, 'cpu')) });
    charts.push({ file: 'echo-throughput.svg', part: 'echo', caption: 'Echo: messages per second against connections, per server (hollow squares: capped by the load generator)',
      svg: await render(echoSpec(echo, subtitles.echo, 'throughput')) });
  }
  if (echo && echo.syscalls.length > 0) {
    charts.push({ file: 'syscalls.svg', part: 'echo', caption: 'System calls per echoed message, by call, per server: readiness servers against the io_uring completion server',
      svg: await render(syscallSpec(echo, subtitles.echo)) });
  }
  if (ftp && ftp.runs.length > 0) {
    charts.push({ file: 'ftp-cpu.svg', part: 'ftp', caption: 'FTP: the server\'s CPU time per ftpbench step (lower is better)',
      svg: await render(ftpSpec(ftp, subtitles.ftp ?? [], 'cpu')) });
    charts.push({ file: 'ftp.svg', part: 'ftp', caption: 'FTP: ftpbench\'s steps per server (MB/s higher is better, seconds lower)',
      svg: await render(ftpSpec(ftp, subtitles.ftp ?? [], 'result')) });
  }
  if (soak && soak.runs.length > 0) {
    charts.push({ file: 'soak-p99.svg', part: 'soak', caption: 'Soak: p99 echo latency per second over time, at the reference load and while holding every connection, beside the load generator\'s own lag',
      svg: await render(soakLatencySpec(soak, subtitles.soak ?? [])) });
    charts.push({ file: 'soak.svg', part: 'soak', caption: 'Soak: the server\'s memory and open descriptors over time, holding connections and through the churn',
      svg: await render(soakChartSpec(soak, subtitles.soak ?? [])) });
  }
  return charts;
}
