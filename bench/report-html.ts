/**
 * report.html: one self-contained page per run — the machine, the parameters, every table and chart
 * of every part with a few sentences on what it means, and the targets met and missed.
 */
import type { Chart } from './charts';
import { escapeHtml, factList, htmlFigure, htmlPage, htmlTable, meaningBlock, PageSection } from './html';
import { meaning } from './meaning';
import { ReportSection, sectionTables } from './report';
import type { SuiteResult } from './suite';

const TITLES: Record<ReportSection, string> = {
  scaling: 'Scaling: the cost of a wait as descriptors grow',
  micro: 'Micro-benchmarks: one call through the addon',
  echo: 'Echo: CPU per message, throughput, latency, system calls',
  interest: 'Interest churn: what telling epoll what you want costs',
  files: 'Files: one large file, and concurrent uploads',
  ftp: 'FTP: ftpbench\'s steps',
  threads: 'Threads: one reactor per core',
  soak: 'Soak and churn',
  targets: 'Targets met and missed',
};

function machineSection(r: SuiteResult): PageSection {
  const m = r.machine;
  const facts: [string, string][] = [
    ['CPU', `${m.cpuModel}, ${m.cores} cores`],
    ['kernel', `${m.kernel} (${m.platform} ${m.arch})`],
    ['Node', m.node],
    ['memory', `${m.memoryGiB} GiB`],
    ['load average at start', `${m.loadAverage.join(', ')} (1, 5, 15 min): other work on the machine skews absolute numbers; ratios between cells of one run hold better`],
    ['descriptor limit', m.descriptorLimit ? `${m.descriptorLimit.soft} soft, ${m.descriptorLimit.hard} hard` : 'unknown'],
    ['pinning (taskset)', m.taskset ? 'available' : 'not available'],
    ['started', `${r.startedAt}, ${r.durationSec} s in all` +
      (r.partSeconds ? ` (${Object.entries(r.partSeconds).map(([part, sec]) => `${part} ${sec} s`).join(', ')})` : '')],
    ['command', ['iomux', ...r.command.slice(1)].join(' ')],
    ['iomux', r.version],
  ];
  return { id: 'machine', title: 'Machine and run', html: factList(facts) };
}

function parametersSection(r: SuiteResult): PageSection {
  const { parts, full, ...perPart } = r.parameters;
  const rows = Object.entries(perPart).filter(([, value]) => value !== undefined)
    .map(([part, value]) => `<h3>${escapeHtml(part)}</h3><pre><code>${escapeHtml(JSON.stringify(value, null, 2))}</code></pre>`);
  return { id: 'parameters', title: 'Parameters', html: `${factList([['parts', parts.join(', ')], ['preset', full ? '--full' : 'default']])}\n${rows.join('\n')}` };
}

/** The page itself: charts are those this run drew (none with --no-charts). */
export function htmlReport(r: SuiteResult, charts: Chart[]): string {
  const sections: PageSection[] = [machineSection(r)];
  for (const { section, tables } of sectionTables(r)) {
    const figures = charts.filter((c) => c.part === section).map((c) => htmlFigure(c.svg, c.caption, c.file.replace(/\W/g, '-')));
    sections.push({
      id: section,
      title: TITLES[section],
      html: [meaningBlock(meaning(r, section)), ...figures, ...tables.map(({ table, notes }) => htmlTable(table, notes))].join('\n'),
    });
  }
  sections.push(parametersSection(r));
  const measured = r.targets.filter((t) => t.met !== null);
  const missed = measured.filter((t) => t.met === false).length;
  const subtitle = `${r.startedAt} · ${r.machine.cpuModel}, ${r.machine.cores} cores, ${r.machine.kernel}, Node ${r.machine.node} · ` +
    `parts: ${r.parameters.parts.join(', ')}` + (measured.length > 0 ? ` · targets: ${measured.length - missed} of ${measured.length} met` : '');
  return htmlPage('iomux bench report', subtitle, sections,
    `Written by iomux bench ${r.version}. Everything here is also in results.json (every repetition's raw sample), the CSV files and results.md beside this page.`);
}
