/**
 * `iomux bench --compare A.json B.json`: two saved runs, the same rows side by side — each cell's
 * median with its min–max over the repetitions, B / A, and a marker where the change is beyond both
 * runs' own noise: the two runs' min–max ranges do not overlap (a cell measured once has no range, so
 * its change is never marked). Printed as a terminal table, written as compare.md and compare.html.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { num, spreadText } from './format';
import { factList, htmlPage, htmlTable, meaningBlock, PageSection } from './html';
import { machineSummary } from './machine';
import { markdownTable, TableData, terminalTable } from './report';
import type { Spread } from './stats';
import type { SuiteResult } from './suite';

/** One metric of one cell, as both runs measured it. */
export interface ComparedRow {
  part: string;
  /** The cell, as its part names it (e.g. "iomux-epoll C=100 S=64"). */
  cell: string;
  metric: string;
  /** Whether a larger value is better (msgs/s) or worse (µs). */
  higherIsBetter: boolean;
  a: Spread;
  b: Spread;
  /** Median B / median A. */
  ratio: number | null;
  /** 'better' or 'worse' when the min–max ranges do not overlap; 'within noise'; 'noise unknown' with one repetition. */
  change: 'better' | 'worse' | 'within noise' | 'noise unknown';
}

export interface Comparison {
  a: { file: string; run: SuiteResult };
  b: { file: string; run: SuiteResult };
  rows: ComparedRow[];
  /** Parts of the runs that have no comparable rows (not in both, or without repetitions to compare). */
  notCompared: string[];
}

function changeOf(a: Spread, b: Spread, higherIsBetter: boolean): ComparedRow['change'] {
  if (a.count < 2 || b.count < 2) return 'noise unknown';
  if (b.min > a.max) return higherIsBetter ? 'better' : 'worse';
  if (b.max < a.min) return higherIsBetter ? 'worse' : 'better';
  return 'within noise';
}

type Metric<T> = { metric: string; higherIsBetter: boolean; value: (row: T) => Spread | null | undefined; scale?: number };

/** Pairs the rows of one part by their cell name and compares each metric. */
function pair<T>(part: string, rowsA: readonly T[] | undefined, rowsB: readonly T[] | undefined, cell: (row: T) => string,
  metrics: Metric<T>[]): ComparedRow[] {
  if (!rowsA || !rowsB) return [];
  const out: ComparedRow[] = [];
  const byCell = new Map(rowsA.map((row) => [cell(row), row]));
  for (const rowB of rowsB) {
    const rowA = byCell.get(cell(rowB));
    if (!rowA) continue;
    for (const m of metrics) {
      const a = m.value(rowA);
      const b = m.value(rowB);
      if (!a || !b || a.count === 0 || b.count === 0) continue;
      const scale = m.scale ?? 1;
      const scaled = (s: Spread): Spread => ({ median: s.median * scale, min: s.min * scale, max: s.max * scale, count: s.count });
      out.push({ part, cell: cell(rowB), metric: m.metric, higherIsBetter: m.higherIsBetter, a: scaled(a), b: scaled(b),
        ratio: a.median !== 0 ? b.median / a.median : null, change: changeOf(a, b, m.higherIsBetter) });
    }
  }
  return out;
}

/** A single number (no repetitions) as a spread of one. */
const one = (x: number | null | undefined): Spread | null => (x == null || !Number.isFinite(x) ? null : { median: x, min: x, max: x, count: 1 });

export function compareRuns(a: { file: string; run: SuiteResult }, b: { file: string; run: SuiteResult }): Comparison {
  const A = a.run;
  const B = b.run;
  const rows: ComparedRow[] = [
    ...pair('scaling', A.scaling?.rows.filter((r) => r.js), B.scaling?.rows.filter((r) => r.js), (r) => `${r.mechanism} N=${r.n} A=${r.a}`, [
      { metric: 'iomux wait µs', higherIsBetter: false, value: (r) => r.js?.waitNs, scale: 1e-3 },
      { metric: 'iomux round µs', higherIsBetter: false, value: (r) => r.js?.roundNs, scale: 1e-3 },
      { metric: 'C round µs', higherIsBetter: false, value: (r) => r.c?.roundNs, scale: 1e-3 },
    ]),
    ...pair('micro', A.micro?.rows, B.micro?.rows, (r) => r.name, [
      { metric: 'iomux ns/call', higherIsBetter: false, value: (r) => r.jsNs },
      { metric: 'C ns/call', higherIsBetter: false, value: (r) => r.cNs },
    ]),
    ...pair('echo', A.echo?.rows, B.echo?.rows, (r) => `${r.server} C=${r.connections} S=${r.size}`, [
      { metric: 'CPU µs/msg', higherIsBetter: false, value: (r) => r.serverCpuNsPerMessage, scale: 1e-3 },
      { metric: 'msgs/s', higherIsBetter: true, value: (r) => r.messagesPerSec },
      { metric: 'p50 µs', higherIsBetter: false, value: (r) => r.p50Us },
    ]),
    ...pair('echo', A.echo?.syscalls, B.echo?.syscalls, (r) => `${r.server} C=${r.connections} S=${r.size}`, [
      { metric: 'system calls/msg', higherIsBetter: false, value: (r) => one(r.totalPerMessage) },
    ]),
    ...pair('interest', A.interest?.rows, B.interest?.rows, (r) => `${r.server} C=${r.connections} D=${r.depth}`, [
      { metric: 'CPU µs/msg', higherIsBetter: false, value: (r) => r.cpuNsPerMessage, scale: 1e-3 },
    ]),
    ...pair('files', A.fileTransfer?.rows, B.fileTransfer?.rows, (r) => `${r.impl} ${r.direction}`, [
      { metric: 'MB/s', higherIsBetter: true, value: (r) => r.mbPerSec },
    ]),
    ...pair('threads', A.threads?.rows, B.threads?.rows, (r) => `${r.server} C=${r.connections}`, [
      { metric: 'CPU µs/msg', higherIsBetter: false, value: (r) => r.serverCpuNsPerMessage, scale: 1e-3 },
      { metric: 'msgs/s', higherIsBetter: true, value: (r) => r.messagesPerSec },
    ]),
    ...pair('soak', A.soak?.runs, B.soak?.runs, (r) => r.server, [
      { metric: 'hold p99 µs', higherIsBetter: false, value: (r) => one(r.hold.hold.latencyUs.p99) },
      { metric: 'churn cycles/s', higherIsBetter: true, value: (r) => one(r.churn.run.cyclesPerSec) },
    ]),
  ];
  const parts = ['scaling', 'micro', 'echo', 'interest', 'files', 'ftp', 'threads', 'soak'];
  const notCompared = parts.filter((p) => (A.parameters.parts.includes(p as never) || B.parameters.parts.includes(p as never))
    && !rows.some((r) => r.part === p));
  return { a, b, rows, notCompared };
}

const CHANGE_MARK: Record<ComparedRow['change'], string> = {
  better: 'better', worse: 'worse', 'within noise': '', 'noise unknown': '(1 repetition)',
};

/** One table per part: the cell and metric, A and B as median (min–max), B / A, and the marker. */
export function comparisonTables(c: Comparison): TableData[] {
  const parts = [...new Set(c.rows.map((r) => r.part))];
  return parts.map((part) => ({
    title: `${part}: B / A (a change is marked where the two runs' min–max ranges do not overlap)`,
    head: ['cell', 'metric', 'A', 'B', 'B / A', 'change'],
    aligns: ['left', 'left', 'right', 'right', 'right', 'left'],
    rows: c.rows.filter((r) => r.part === part).map((r) => [r.cell, r.metric, spreadText(r.a), spreadText(r.b),
      r.ratio === null ? '–' : `${num(r.ratio)}×`, CHANGE_MARK[r.change]]),
  }));
}

function runLine(label: string, x: { file: string; run: SuiteResult }): string {
  const r = x.run;
  return `${label}: ${x.file} — ${r.startedAt}, ${machineSummary(r.machine)}, load average ${r.machine.loadAverage.join(' ')}, ` +
    `\`${['iomux', ...r.command.slice(1)].join(' ')}\``;
}

function summary(c: Comparison): string[] {
  const better = c.rows.filter((r) => r.change === 'better').length;
  const worse = c.rows.filter((r) => r.change === 'worse').length;
  const lines = [`${c.rows.length} metrics in both runs: ${better} better and ${worse} worse beyond the runs' own noise, ` +
    `${c.rows.filter((r) => r.change === 'within noise').length} within it, ${c.rows.filter((r) => r.change === 'noise unknown').length} measured once (no noise to judge by).`];
  if (machineSummary(c.a.run.machine) !== machineSummary(c.b.run.machine)) {
    lines.push('The runs were made on different machines (or kernels, or Node versions): a change may be the machine\'s.');
  }
  if (c.notCompared.length > 0) lines.push(`Not compared (not measured in both runs): ${c.notCompared.join(', ')}.`);
  return lines;
}

export function readRun(file: string): SuiteResult {
  const run = JSON.parse(fs.readFileSync(file, 'utf8')) as SuiteResult;
  if (run.tool !== 'iomux bench') throw new Error(`${file} is not a results.json written by iomux bench`);
  return run;
}

/** Compares two saved runs: prints the tables and writes compare.md and compare.html into `outDir`. */
export function runComparison(fileA: string, fileB: string, outDir: string, print: (text: string) => void): Comparison {
  const c = compareRuns({ file: fileA, run: readRun(fileA) }, { file: fileB, run: readRun(fileB) });
  const tables = comparisonTables(c);
  const head = [runLine('A', c.a), runLine('B', c.b), ...summary(c)];
  print(head.join('\n'));
  for (const t of tables) print(`\n${terminalTable(t)}`);
  fs.mkdirSync(outDir, { recursive: true });
  const md = path.join(outDir, 'compare.md');
  fs.writeFileSync(md, `${head.map((l) => `${l}\n`).join('\n')}\n${tables.map(markdownTable).join('\n\n')}\n`);
  const sections: PageSection[] = [
    { id: 'runs', title: 'The two runs', html: `${factList([['A', runLine('A', c.a).slice(3)], ['B', runLine('B', c.b).slice(3)]])}${meaningBlock(summary(c))}` },
    ...tables.map((t, i) => ({ id: `part-${i}`, title: t.title.split(':')[0], html: htmlTable(t) })),
  ];
  const html = path.join(outDir, 'compare.html');
  fs.writeFileSync(html, htmlPage('iomux bench: two runs compared', `A: ${c.a.run.startedAt} · B: ${c.b.run.startedAt}`, sections,
    'B / A is the ratio of medians; a change is marked only where the two runs\' min–max ranges over their repetitions do not overlap.'));
  print(`\nWrote ${md}, ${html}`);
  return c;
}
