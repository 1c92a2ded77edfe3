/** What a run leaves for people and programs: terminal tables (cli-table3), CSV files and the JSON record. */
import Table from 'cli-table3';
import { boundBy, BoundBy, CAPPED_SHARE, EchoResult, EchoRow, isCapped } from './echo';
import type { FilesResult } from './files';
import type { InterestResult } from './interest';
import { FTP_WHOLE_CSV_HEAD, ftpCsvRows, ftpTables } from './ftp-report';
import type { MicroResult } from './micro';
import type { ScalingResult } from './scaling';
import { num, spreadText } from './format';
import type { Spread } from './stats';
import type { SuiteResult } from './suite';
import { countingTool } from './syscalls';
import type { TargetCheck } from './targets';
import { costTable, distributionTable, threadsCsv, threadsTable } from './threads-report';
import { soakCsvFiles, soakTables } from './soak-report';

// ---- numbers for people ----

export { num, spreadText } from './format';

export function ratioText(x: number | null | undefined): string {
  return x == null ? '–' : `${num(x)}×`;
}

/** A table before it is drawn: for the terminal (cli-table3) or as Markdown (results.md). */
export interface TableData {
  title: string;
  head: string[];
  rows: string[][];
  /** Column alignment; the first column is left-aligned, the rest right-aligned, unless given. */
  aligns?: ('left' | 'right')[];
  /** Lines shown under the table (e.g. the full reason behind a short "skipped" tag). */
  footer?: string[];
}

function alignsOf(t: TableData): ('left' | 'right')[] {
  return t.aligns ?? t.head.map((_, i) => (i === 0 ? 'left' : 'right'));
}

export function terminalTable(t: TableData): string {
  if (t.rows.length === 0) return [t.title, ...(t.footer ?? []).map((line) => `  ${line}`)].join('\n');
  const table = new Table({ head: t.head, style: { head: [], border: [], compact: true }, colAligns: alignsOf(t) });
  for (const row of t.rows) table.push(row);
  return [t.title, table.toString(), ...(t.footer ?? []).map((line) => `  ${line}`)].join('\n');
}

export function markdownTable(t: TableData): string {
  if (t.rows.length === 0) return [`**${t.title}**`, ...(t.footer ?? []).map((f) => `\n${f}`)].join('\n');
  const line = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  const rule = alignsOf(t).map((a) => (a === 'right' ? '---:' : ':---'));
  return [`**${t.title}**`, '', line(t.head), `|${rule.join('|')}|`, ...t.rows.map(line), ...(t.footer ?? []).map((f) => `\n${f}`)].join('\n');
}

/** A short tag for a table cell; the full reasons are listed once under the table. */
function skipTag(reason: string | undefined, reasons: Set<string>): string {
  if (reason === undefined) return 'skipped';
  reasons.add(reason);
  if (reason.includes('FD_SETSIZE')) return 'skipped: FD_SETSIZE';
  if (reason.includes('RLIMIT_NOFILE')) return 'skipped: fd limit';
  return 'skipped';
}

const percent = (x: number | null) => (x === null ? '–' : `${num(x * 100)}%`);

export function scalingTable(r: ScalingResult): TableData {
  const reasons = new Set<string>();
  const rows = r.rows.map((row) => [
    row.mechanism, String(row.n), String(row.a),
    row.js ? spreadText(row.js.roundNs, 1e-3) : skipTag(row.skipped.js, reasons),
    row.c ? spreadText(row.c.roundNs, 1e-3) : skipTag(row.skipped.c, reasons),
    ratioText(row.roundJsToC),
    row.js ? spreadText(row.js.waitNs, 1e-3) : '–',
    row.c ? spreadText(row.c.waitNs, 1e-3) : '–',
    ratioText(row.waitJsToC),
  ]);
  return {
    title: 'Scaling: µs per round and per wait call (median, min–max over repetitions)',
    head: ['mechanism', 'N', 'A', 'iomux round µs', 'C round µs', 'JS/C', 'iomux wait µs', 'C wait µs', 'JS/C wait'],
    rows, footer: [...reasons].map((reason) => `skipped: ${reason}`),
  };
}

export function microTable(r: MicroResult): TableData {
  return {
    title: 'Micro-benchmarks: ns per call (median, min–max)',
    head: ['call', 'iomux (JS)', 'ns/call', 'C', 'ns/call', 'JS/C', 'crossing ns'],
    rows: r.rows.map((row) => [row.name, row.js, spreadText(row.jsNs), row.c, spreadText(row.cNs), ratioText(row.jsToC), num(row.overheadNs)]),
    aligns: ['left', 'left', 'right', 'left', 'right', 'right', 'right'],
  };
}

/** Who limited a row's rate (computed for a saved run that predates the field). */
export function boundOf(row: EchoRow): BoundBy {
  return row.boundBy ?? boundBy(row.serverCpuShare, row.loadgenCpuShare);
}

export function echoTable(r: EchoResult): TableData {
  const rows = r.rows.map((row) => {
    const bound = boundOf(row);
    const capped = isCapped({ boundBy: bound });
    return [
      row.server, String(row.connections), String(row.size),
      // CPU per message first: it is the server's own cost whoever limited the rate.
      spreadText(row.serverCpuNsPerMessage, 1e-3),
      `${spreadText(row.messagesPerSec)}${capped ? ' capped' : ''}`,
      spreadText(row.p50Us), spreadText(row.p99Us),
      percent(row.serverCpuShare), percent(row.loadgenCpuShare), bound,
      row.eventsPerMessage === null ? '–' : row.eventsPerMessage.toFixed(2),
      ratioText(row.cpuToNode), ratioText(row.toCeiling), ratioText(row.toNode),
    ];
  });
  for (const skip of r.skips) rows.push([skip.server, String(skip.connections), String(skip.size), 'skipped', ...Array<string>(10).fill('')]);
  const footer = [...new Set(r.skips.map((skip) => `skipped: ${skip.reason}`))];
  if (r.rows.some((row) => isCapped({ boundBy: boundOf(row) }))) {
    footer.push(`capped: the load generator used ≥ ${CAPPED_SHARE * 100} % of its core, so msgs/s (and / C ceiling, / Node net) is its limit, ` +
      'not the server\'s; compare CPU µs/msg there');
  }
  return {
    title: `Echo: server CPU per message, throughput, latency (D=${r.options.depth}; median, min–max)`,
    head: ['server', 'C', 'S', 'CPU µs/msg', 'msgs/s', 'p50 µs', 'p99 µs', 'server CPU', 'loadgen CPU', 'bound by', 'events/msg',
      'CPU / Node', '/ C ceiling', '/ Node net'],
    rows, footer,
  };
}

/** The syscalls that matter for an event loop, then the rest summed. */
const SYSCALL_COLUMNS = ['epoll_wait', 'epoll_pwait', 'epoll_ctl', 'io_uring_enter', 'poll', 'pselect6', 'select', 'read', 'recvfrom', 'write', 'writev', 'sendto'];

export function syscallTable(r: EchoResult): TableData {
  const present = SYSCALL_COLUMNS.filter((name) => r.syscalls.some((s) => (s.perMessage[name] ?? 0) > 0));
  const fixed = (x: number) => x.toFixed(2);
  const rows = r.syscalls.map((s) => {
    const listed = present.reduce((sum, name) => sum + (s.perMessage[name] ?? 0), 0);
    return [s.server, ...present.map((name) => fixed(s.perMessage[name] ?? 0)), fixed(s.totalPerMessage - listed), fixed(s.totalPerMessage)];
  });
  const where = r.syscalls.length > 0 ? `C=${r.syscalls[0].connections}, S=${r.syscalls[0].size}` : 'none counted';
  const counted = countingTool(r.syscalls);
  const tool = counted === null ? '' : counted === 'perf' ? 'perf stat syscall counters, '
    : 'strace -c -f, which slows the server (fewer calls batch), ';
  return {
    title: `System calls per echoed message (${tool}${where})`,
    head: ['server', ...present, 'other', 'total'],
    rows, footer: r.syscallsSkipped ? [`not counted: ${r.syscallsSkipped}`] : [],
  };
}

export function interestTable(r: InterestResult): TableData {
  const fixed = (x: number | null) => (x === null ? '–' : x.toFixed(2));
  return {
    title: 'Interest churn (epoll; S=64): what telling the kernel what you want costs per message',
    head: ['server', 'C', 'D', 'CPU µs/msg', 'msgs/s', 'events/msg', 'epoll_ctl/msg', 'recv/msg', 'syscalls/msg'],
    rows: r.rows.map((row) => [
      row.server, String(row.connections), String(row.depth), spreadText(row.cpuNsPerMessage, 1e-3),
      spreadText(row.messagesPerSec), fixed(row.eventsPerMessage), fixed(row.epollCtlPerMessage), fixed(row.recvPerMessage),
      fixed(row.syscallsPerMessage),
    ]),
    footer: r.syscallsSkipped ? [`system calls not counted: ${r.syscallsSkipped}`] : [],
  };
}

export function targetTable(checks: TargetCheck[]): TableData {
  return {
    title: 'Targets (ratios from this run)',
    head: ['target', 'measured', 'needed', 'met'],
    rows: checks.map((c) => [
      c.target, c.unit && c.value !== null ? `${num(c.value)} ${c.unit}` : ratioText(c.value),
      `${c.kind === 'min' ? '≥' : '≤'} ${c.threshold}${c.unit ? ` ${c.unit}` : '×'}`, c.met === null ? 'not measured' : c.met ? 'yes' : 'NO',
    ]),
    aligns: ['left', 'right', 'right', 'left'],
  };
}

const mib = (bytes: number) => bytes / 2 ** 20;

export function filesTable(r: FilesResult): TableData {
  const label: Record<string, string> = { put: 'put', get: 'get', 'get-cold': 'get (cold: hashes the source first)' };
  const rows = r.rows.map((row) => [
    row.impl, label[row.direction], spreadText(row.mbPerSec), row.commandMbPerSec ? spreadText(row.commandMbPerSec) : '–',
    row.serverCpuPerGiB ? spreadText(row.serverCpuPerGiB) : '–', ratioText(row.toNode), ratioText(row.toC),
  ]);
  return {
    title: `Files: one ${r.options.sizeMiB} MiB file over loopback, MB/s (median, min–max over ${r.options.repeat})`,
    head: ['implementation', 'direction', 'MB/s', 'command MB/s', 'server CPU s/GiB', '/ Node pipeline', '/ C sendfile'],
    rows,
    aligns: ['left', 'left', 'right', 'right', 'right', 'right', 'right'],
  };
}

export function filesMemoryTable(r: FilesResult): TableData {
  const rows = r.memory.map((m) => [
    String(m.repetition + 1), num(mib(m.baselineBytes)), num(mib(m.peakBytes)), num(mib(m.peakBytes - m.baselineBytes)), num(mib(m.peakAfterLoadBytes)),
  ]);
  const load = r.load.map((l) => `${l.verified} of ${l.uploads} verified in ${l.seconds.toFixed(2)} s${l.failures.length ? ` (${l.failures[0]})` : ''}`);
  return {
    title: `Files: the server's memory (MiB), and ${r.options.uploads} concurrent uploads of ${r.options.uploadMiB} MiB: ${spreadText(r.loadMbPerSec)} MB/s in total`,
    head: ['run', 'RSS listening', `peak through ${r.options.sizeMiB} MiB`, 'rise', 'peak after the uploads'],
    rows,
    footer: load.map((line, i) => `run ${i + 1}: ${line}`),
  };
}

/** The part a table or chart belongs to in the report, in the order of the suite; 'targets' closes it. */
export type ReportSection = 'scaling' | 'micro' | 'echo' | 'interest' | 'files' | 'ftp' | 'threads' | 'soak' | 'targets';

/** A run's tables grouped by part, in the order they are printed. */
export function sectionTables(r: SuiteResult): { section: ReportSection; tables: { table: TableData; notes: string[] }[] }[] {
  const sections: { section: ReportSection; tables: { table: TableData; notes: string[] }[] }[] = [];
  const add = (section: ReportSection, tables: { table: TableData; notes: string[] }[]) => sections.push({ section, tables });
  if (r.scaling) add('scaling', [{ table: scalingTable(r.scaling), notes: r.scaling.notes }]);
  if (r.micro) add('micro', [{ table: microTable(r.micro), notes: r.micro.notes }]);
  if (r.echo) add('echo', [{ table: echoTable(r.echo), notes: r.echo.notes }, { table: syscallTable(r.echo), notes: [] }]);
  if (r.interest) add('interest', [{ table: interestTable(r.interest), notes: r.interest.notes }]);
  if (r.fileTransfer) {
    add('files', [{ table: filesTable(r.fileTransfer), notes: r.fileTransfer.notes }, { table: filesMemoryTable(r.fileTransfer), notes: [] }]);
  }
  if (r.ftp) {
    const [first, ...rest] = ftpTables(r.ftp);
    add('ftp', [{ table: first, notes: r.ftp.notes }, ...rest.map((table) => ({ table, notes: [] }))]);
  }
  if (r.threads) {
    const tables = [{ table: threadsTable(r.threads), notes: r.threads.notes }, { table: distributionTable(r.threads), notes: [] }];
    const costs = costTable(r.threads);
    if (costs) tables.push({ table: costs, notes: r.threads.costs?.notes ?? [] });
    add('threads', tables);
  }
  if (r.soak) {
    const [first, ...rest] = soakTables(r.soak);
    add('soak', [{ table: first, notes: r.soak.notes }, ...rest.map((table) => ({ table, notes: [] }))]);
  }
  if (r.targets.length > 0) add('targets', [{ table: targetTable(r.targets), notes: [] }]);
  return sections;
}

/** Every table of a run, in the order they are printed. */
export function resultTables(r: SuiteResult): { table: TableData; notes: string[] }[] {
  return sectionTables(r).flatMap((s) => s.tables);
}

/** results.md: the same tables in Markdown, headed by the machine and the command, for docs/benchmarks.md. */
export function markdownReport(r: SuiteResult): string {
  const m = r.machine;
  const parts = [
    `Measured ${r.startedAt} on ${m.cpuModel}, ${m.cores} cores, ${m.kernel}, Node ${m.node} (load average at start: ${m.loadAverage.join(', ')}), ` +
    `with \`${['iomux', ...r.command.slice(1)].join(' ')}\` in ${r.durationSec} s` +
    (r.partSeconds ? ` (${Object.entries(r.partSeconds).map(([part, sec]) => `${part} ${sec} s`).join(', ')}).` : '.'),
  ];
  for (const { table, notes } of resultTables(r)) {
    parts.push(markdownTable(table) + (notes.length > 0 ? `\n\n${notes.map((n) => `- ${n}`).join('\n')}` : ''));
  }
  return `${parts.join('\n\n')}\n`;
}

// ---- CSV ----

function csvCell(value: unknown): string {
  if (value == null) return '';
  const text = typeof value === 'number' ? (Number.isFinite(value) ? String(Math.round(value * 1000) / 1000) : '') : String(value);
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** CSV with '#' comment lines first: every result file says where and how it was measured. */
function csv(header: string[], head: string[], rows: unknown[][]): string {
  return [...header.map((h) => `# ${h}`), head.join(','), ...rows.map((r) => r.map(csvCell).join(','))].join('\n') + '\n';
}

const spreadCells = (s: Spread | null | undefined, scale = 1) => (s && s.count > 0 ? [s.median * scale, s.min * scale, s.max * scale] : [null, null, null]);

export function csvFiles(result: SuiteResult): Record<string, string> {
  const header = [`machine: ${JSON.stringify(result.machine)}`, `parameters: ${JSON.stringify(result.parameters)}`, `started: ${result.startedAt}`];
  const files: Record<string, string> = {};
  if (result.scaling) {
    const rows: unknown[][] = [];
    for (const row of result.scaling.rows) {
      for (const impl of ['js', 'c'] as const) {
        const s = row[impl];
        rows.push([row.mechanism, row.n, row.a, impl, ...spreadCells(s?.roundNs, 1e-3), ...spreadCells(s?.waitNs, 1e-3), s?.rounds,
          row.roundJsToC, row.waitJsToC, row.skipped[impl]]);
      }
    }
    files['scaling.csv'] = csv(header, ['mechanism', 'n', 'a', 'impl', 'round_us_median', 'round_us_min', 'round_us_max',
      'wait_us_median', 'wait_us_min', 'wait_us_max', 'rounds', 'round_js_to_c', 'wait_js_to_c', 'skipped'], rows);
  }
  if (result.micro) {
    files['micro.csv'] = csv(header, ['call', 'js', 'c', 'js_ns_median', 'js_ns_min', 'js_ns_max', 'c_ns_median', 'c_ns_min', 'c_ns_max',
      'js_to_c', 'crossing_ns'], result.micro.rows.map((r) => [r.name, r.js, r.c, ...spreadCells(r.jsNs), ...spreadCells(r.cNs), r.jsToC, r.overheadNs]));
  }
  if (result.echo) {
    const depth = result.echo.options.depth;
    files['echo.csv'] = csv(header, ['server', 'connections', 'size', 'depth', 'msgs_per_sec_median', 'msgs_per_sec_min', 'msgs_per_sec_max',
      'p50_us_median', 'p99_us_median', 'server_cpu_us_per_msg_median', 'server_cpu_us_per_msg_min', 'server_cpu_us_per_msg_max',
      'server_cpu_share', 'loadgen_cpu_share', 'bound_by', 'capped', 'events_per_msg', 'bytes_verified', 'to_c_ceiling', 'to_node_net', 'cpu_to_node_net'],
    result.echo.rows.map((r) => [r.server, r.connections, r.size, depth, ...spreadCells(r.messagesPerSec), r.p50Us.median, r.p99Us.median,
      ...spreadCells(r.serverCpuNsPerMessage, 1e-3), r.serverCpuShare, r.loadgenCpuShare, boundOf(r), isCapped({ boundBy: boundOf(r) }),
      r.eventsPerMessage, r.bytesVerified, r.toCeiling, r.toNode, r.cpuToNode]));
    if (result.echo.syscalls.length > 0) {
      const rows: unknown[][] = [];
      for (const s of result.echo.syscalls) {
        for (const [name, perMessage] of Object.entries(s.perMessage)) rows.push([s.server, s.connections, s.size, s.messages, name, perMessage]);
        rows.push([s.server, s.connections, s.size, s.messages, 'total', s.totalPerMessage]);
      }
      files['syscalls.csv'] = csv(header, ['server', 'connections', 'size', 'messages', 'syscall', 'per_message'], rows);
    }
  }
  if (result.interest) {
    files['interest.csv'] = csv(header, ['server', 'connections', 'depth', 'server_cpu_us_per_msg_median', 'server_cpu_us_per_msg_min',
      'server_cpu_us_per_msg_max', 'msgs_per_sec_median', 'loadgen_cpu_share', 'events_per_msg', 'epoll_ctl_per_msg', 'recv_per_msg',
      'syscalls_per_msg'], result.interest.rows.map((r) => [r.server, r.connections, r.depth, ...spreadCells(r.cpuNsPerMessage, 1e-3),
      r.messagesPerSec.median, r.loadgenCpuShare, r.eventsPerMessage, r.epollCtlPerMessage, r.recvPerMessage, r.syscallsPerMessage]));
  }
  if (result.fileTransfer) {
    files['files.csv'] = csv(header, ['implementation', 'direction', 'size_mib', 'mb_per_sec_median', 'mb_per_sec_min', 'mb_per_sec_max',
      'command_mb_per_sec_median', 'server_cpu_s_per_gib_median', 'to_node_pipeline', 'to_c_sendfile'],
    result.fileTransfer.rows.map((r) => [r.impl, r.direction, result.fileTransfer!.options.sizeMiB, ...spreadCells(r.mbPerSec), r.commandMbPerSec?.median,
      r.serverCpuPerGiB?.median, r.toNode, r.toC]));
    files['files-memory.csv'] = csv(header, ['repetition', 'rss_listening_bytes', 'peak_bytes', 'peak_after_uploads_bytes', 'uploads',
      'verified', 'upload_bytes', 'upload_seconds'],
    result.fileTransfer.memory.map((m, i) => [m.repetition, m.baselineBytes, m.peakBytes, m.peakAfterLoadBytes, result.fileTransfer!.load[i]?.uploads,
      result.fileTransfer!.load[i]?.verified, result.fileTransfer!.load[i]?.bytes, result.fileTransfer!.load[i]?.seconds]));
  }
  if (result.ftp) {
    const { steps, whole } = ftpCsvRows(result.ftp);
    files['ftp.csv'] = csv(header, ['server', 'step', 'clients', 'mb_per_sec', 'seconds', 'bytes', 'server_cpu_sec', 'rss_mib'], steps);
    if (whole.length > 0) files['ftp-whole.csv'] = csv(header, FTP_WHOLE_CSV_HEAD, whole);
  }
  if (result.threads) {
    const [head, ...rows] = threadsCsv(result.threads);
    files['threads.csv'] = csv(header, head, rows);
  }
  if (result.soak) Object.assign(files, soakCsvFiles(result.soak, header));
  return files;
}
