/**
 * A report as text for people (a timeline per mechanism, then a side-by-side summary and what it
 * shows) or as JSON for programs. Both carry the same facts.
 */
import type { Report, Row, Summary, Trace } from './model';

export interface TextOptions {
  /** Rows shown per timeline before the middle is elided; 0 shows all. */
  maxRows?: number;
}

const LEGEND =
  'Events: IN readable · OUT writable · HUP hung up (both directions closed) · RDHUP peer shut down its ' +
  'sending side · ERR error · PRI exceptional. select() reports only its readable/writable/exceptional ' +
  'sets, shown as IN/OUT/PRI. A row marked · is the script acting, not a wake-up.';

export function renderJson(report: Report): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

export function renderText(report: Report, options: TextOptions = {}): string {
  const maxRows = options.maxRows ?? 24;
  const out: string[] = [];
  out.push(`iomux trace ${report.scenario}: ${report.title}`, '');
  out.push(...wrap(report.setup), ...wrap(LEGEND), '');
  for (const trace of report.traces) out.push(...renderTimeline(trace, report.unit, maxRows), '');
  for (const reason of report.unavailable) out.push(`skipped ${reason}`);
  if (report.unavailable.length) out.push('');
  if (report.traces.length) {
    out.push('Summary');
    out.push(...table(summaryTable(report)).map((line) => `  ${line}`), '');
  }
  if (report.conclusions.length) {
    out.push('What this shows');
    for (const line of report.conclusions) out.push(...wrap(line, '  - ', '    '));
  }
  return `${out.join('\n').trimEnd()}\n`;
}

function renderTimeline(trace: Trace, unit: string, maxRows: number): string[] {
  const roles = Object.entries(trace.descriptors).map(([role, fd]) => `${role} fd ${fd}`).join(', ');
  const lines = [`── ${trace.label} ── ${trace.registration}${roles ? ` · ${roles}` : ''}`];
  if (trace.summary.error) return [...lines, `   the kernel refused: ${trace.summary.error}`];
  const header = ['time ms', 'fd', 'reported', 'action', unit];
  const cells = trace.rows.map(rowCells);
  let shown: string[][] = cells;
  if (maxRows > 0 && cells.length > maxRows) {
    const head = Math.ceil(maxRows * 0.7);
    const tail = maxRows - head;
    const elided = cells.length - head - tail;
    shown = [...cells.slice(0, head), ['', '', '', `… ${elided} more rows (--rows 0 shows all, --json has all)`, ''],
      ...cells.slice(cells.length - tail)];
  }
  return [...lines, ...table([header, ...shown], [true, true, false, false, true]).map((line) => `   ${line}`)];
}

function rowCells(row: Row): string[] {
  return [
    row.t.toFixed(2),
    row.fd === null ? '·' : String(row.fd),
    row.kind === 'wake' ? row.events.join('|') || '(none)' : '·',
    row.action,
    row.bytes === null ? '' : String(row.bytes),
  ];
}

function summaryTable(report: Report): string[][] {
  const header = ['mechanism', ...report.columns.map((c) => c.label)];
  const body = report.traces.map((trace) => [
    trace.label,
    ...report.columns.map((c) => (trace.summary.error ? '-' : formatValue(summaryValue(trace.summary, c.key)))),
  ]);
  return [header, ...body];
}

export function summaryValue(summary: Summary, key: string): unknown {
  return key in summary ? (summary as unknown as Record<string, unknown>)[key] : summary.counts[key];
}

export function formatValue(value: unknown): string {
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (value === undefined || value === null || value === '') return '-';
  return String(value);
}

/** Aligned columns; numeric-looking columns right-aligned unless told otherwise. */
function table(rows: string[][], rightAligned?: boolean[]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const right = rightAligned ?? rows[0].map((_, i) => i > 0 && rows.slice(1).every((r) => /^-?[\d.]*$|^-$/.test(r[i] ?? '')));
  return rows.map((r) => r
    .map((cell, i) => (right[i] ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
    .join('  ')
    .trimEnd());
}

function wrap(text: string, first = '', rest = first, width = 100): string[] {
  const lines: string[] = [];
  let prefix = first;
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && prefix.length + line.length + 1 + word.length > width) {
      lines.push(prefix + line);
      prefix = rest;
      line = '';
    }
    line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(prefix + line);
  return lines;
}
