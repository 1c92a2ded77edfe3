/**
 * The benchmark suite behind `npm run bench` and `iomux bench`: runs the chosen parts with a progress
 * bar, prints tables, checks the issue's targets, and writes JSON, CSV and SVG charts — each file
 * recording the machine and the exact parameters.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Chart, renderCharts } from './charts';
import { readRun } from './compare';
import { htmlReport } from './report-html';
import { echoCellCount, EchoOptions, EchoResult, runEcho } from './echo';
import { filesCellCount, FilesOptions, FilesResult, runFiles } from './files';
import { ftpCellCount, FtpOptions, FtpResult, runFtp } from './ftp';
import { machineInfo, MachineInfo, machineSummary } from './machine';
import { microCellCount, MicroOptions, MicroResult, runMicro } from './micro';
import type { Part, SuiteOptions } from './options';
import { stopDescendants } from './descendants';
import { createProgress } from './progress';
import { csvFiles, markdownReport, resultTables, terminalTable } from './report';
import { runScaling, scalingCellCount, ScalingOptions, ScalingResult } from './scaling';
import { checkFtpTargets, checkTargets, TargetCheck } from './targets';
import { interestCellCount, InterestOptions, InterestResult, runInterest } from './interest';
import { checkThreadTargets } from './threads-report';
import { runThreads, threadsCellCount, ThreadsOptions, ThreadsResult } from './threads';
import { checkSoakTargets, runSoak, soakCellCount, SoakOptions, SoakResult } from './soak';

export type { Part, SuiteOptions } from './options';

export interface SuiteResult {
  tool: 'iomux bench';
  version: string;
  startedAt: string;
  finishedAt: string;
  durationSec: number;
  /** Seconds each part took (absent in runs saved before it was kept). */
  partSeconds?: Partial<Record<Part, number>>;
  command: string[];
  machine: MachineInfo;
  parameters: {
    parts: Part[]; full: boolean; scaling?: ScalingOptions; micro?: MicroOptions; echo?: EchoOptions; interest?: InterestOptions;
    files?: FilesOptions; ftp?: FtpOptions; threads?: ThreadsOptions; soak?: SoakOptions;
  };
  scaling: ScalingResult | null;
  micro: MicroResult | null;
  echo: EchoResult | null;
  /** The interest-churn part; absent in runs saved before it existed. */
  interest?: InterestResult | null;
  /** The file-transfer part; absent in runs saved before it existed. */
  fileTransfer?: FilesResult | null;
  /** Absent in runs saved before the FTP benchmark existed. */
  ftp?: FtpResult | null;
  /** The threads part; absent in runs saved before it existed. */
  threads?: ThreadsResult | null;
  /** The soak part (`--soak`); absent in runs saved before it existed. */
  soak?: SoakResult | null;
  targets: TargetCheck[];
  /** Files this run wrote. */
  files: string[];
  /** Set when Ctrl-C stopped the run: the part that was running, whose results are not here. */
  interrupted?: { during: Part | null };
}


function soakSubtitle(s: SoakOptions): string {
  return `hold ${s.connections} connections ${s.holdMs / 1000} s, one ${s.size} B echo each per ${s.intervalMs} ms; churn ${s.cycles} cycles, ${s.parallel} in parallel; ${s.pin ? 'pinned' : 'not pinned'}`;
}

function packageVersion(): string {
  return (require('../../package.json') as { version: string }).version;
}

function subtitles(r: SuiteResult): { scaling: string[]; echo: string[]; ftp: string[]; soak: string[] } {
  const m = machineSummary(r.machine);
  const s = r.parameters.scaling;
  const e = r.parameters.echo;
  const f = r.parameters.ftp;
  return {
    ftp: [m, f ? `N ${f.clients}; ${f.fileSize / 2 ** 20} MiB per client; one-client steps ${f.seconds} s of ${f.transferSize / 2 ** 20} MiB transfers; ${f.pin ? 'pinned' : 'not pinned'}` : ''],
    scaling: [m, s ? `N ${s.n.join(', ')}; A ${s.a.join(', ')}; ${s.transport} descriptors; ${s.timeMs} ms per cell; repeat ${s.repeat}` : ''],
    echo: [m, e ? `D ${e.depth}; ${e.durationMs} ms window after ${e.warmupMs} ms warm-up; repeat ${e.repeat}; ${e.pin ? 'pinned' : 'not pinned'}` : ''],
    soak: [m, r.soak ? soakSubtitle(r.soak.options) : ''],
  };
}

export async function runSuite(o: SuiteOptions): Promise<SuiteResult> {
  printDestination(o);
  const started = Date.now();
  const machine = machineInfo();
  const has = (part: Part) => o.parts.includes(part);
  const total = (has('scaling') ? scalingCellCount(o.scaling) : 0) + (has('micro') ? microCellCount(o.micro) : 0)
    + (has('echo') ? echoCellCount(o.echo) : 0) + (has('interest') ? interestCellCount(o.interest) : 0)
    + (has('files') ? filesCellCount(o.files) : 0) + (has('threads') ? threadsCellCount(o.threads) : 0)
    + (has('ftp') ? ftpCellCount(o.ftp) : 0) + (has('soak') ? soakCellCount(o.soak) : 0);
  const bar = createProgress(o.progress, total);
  // The part that is running, for an interrupted run's record.
  let running: Part | null = null;
  const progress = { ...bar, part: (name: string, cells: number) => { running = name as Part; bar.part(name, cells); } };
  let scaling: ScalingResult | null = null;
  let micro: MicroResult | null = null;
  let echo: EchoResult | null = null;
  let interest: InterestResult | null = null;
  let files: FilesResult | null = null;
  let ftp: FtpResult | null = null;
  let threads: ThreadsResult | null = null;
  let soak: SoakResult | null = null;
  // Ctrl-C: what the finished parts measured is printed and written, then the process ends with 130 (as a
  // shell reports SIGINT). What the running part started is stopped (bench/descendants.ts).
  let stopping: Promise<never> | null = null;
  const interrupt = () => {
    stopping = (async () => {
      progress.stop();
      stopDescendants();
      const result = assemble();
      result.interrupted = { during: running };
      o.print(`\ninterrupted during ${running ?? 'the last step'}: the parts before it follow`);
      printTables(result, o.print);
      await writeFiles(result, o);
      o.print(`\nWrote ${result.files.join(', ')} (interrupted after ${result.durationSec} s)`);
      stopDescendants();
      process.exit(130);
    })();
  };
  process.once('SIGINT', interrupt);
  // Each part's own time: the budget of the default suite is kept part by part.
  const partSeconds: Partial<Record<Part, number>> = {};
  let partStarted = Date.now();
  const timed = (part: Part) => {
    partSeconds[part] = Math.round((Date.now() - partStarted) / 100) / 10;
    partStarted = Date.now();
  };
  try {
    if (has('scaling')) {
      progress.part('scaling', scalingCellCount(o.scaling));
      scaling = await runScaling(o.scaling, (label) => progress.tick(label));
      timed('scaling');
    }
    if (has('micro')) {
      progress.part('micro', microCellCount(o.micro));
      micro = await runMicro(o.micro, (label) => progress.tick(label));
      timed('micro');
    }
    if (has('echo')) {
      progress.part('echo', echoCellCount(o.echo));
      echo = await runEcho(o.echo, (label) => progress.tick(label));
      timed('echo');
    }
    if (has('interest')) {
      progress.part('interest', interestCellCount(o.interest));
      interest = await runInterest(o.interest, (label) => progress.tick(label));
      timed('interest');
    }
    if (has('files')) {
      progress.part('files', filesCellCount(o.files));
      files = await runFiles(o.files, (label) => progress.tick(label));
      timed('files');
    }
    if (has('threads')) {
      progress.part('threads', threadsCellCount(o.threads));
      threads = await runThreads(o.threads, (label) => progress.tick(label));
      timed('threads');
    }
    if (has('ftp')) {
      progress.part('ftp', ftpCellCount(o.ftp));
      ftp = await runFtp(o.ftp, (label) => progress.tick(label));
      timed('ftp');
    }
    if (has('soak')) {
      progress.part('soak', soakCellCount(o.soak));
      soak = await runSoak(o.soak, (label) => progress.tick(label), (label) => progress.note(label));
      timed('soak');
    }
    running = null;
  } catch (err) {
    // A part whose children died of the same Ctrl-C fails: the interrupt's own ending is the one that counts.
    // A synchronous step (a compiler run) held the loop while the signal came: let its handler run first.
    for (let turn = 0; !stopping && (err as { signal?: unknown }).signal === 'SIGINT' && turn < 10; turn++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (stopping) return stopping;
    throw err;
  } finally {
    process.off('SIGINT', interrupt);
    progress.stop();
  }
  if (stopping) return stopping;
  const result = assemble();
  printTables(result, o.print);
  await writeFiles(result, o);
  o.print(`\nWrote ${result.files.join(', ')} (${result.durationSec} s)`);
  return result;

  function assemble(): SuiteResult {
    const targets = [...checkTargets(scaling, echo, files, interest), ...checkThreadTargets(threads), ...checkFtpTargets(ftp),
      ...checkSoakTargets(soak)];
    return {
      tool: 'iomux bench',
      version: packageVersion(),
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date().toISOString(),
      durationSec: Math.round((Date.now() - started) / 100) / 10,
      partSeconds,
      command: process.argv.slice(1),
      machine,
      parameters: {
        parts: o.parts, full: o.full,
        scaling: has('scaling') ? o.scaling : undefined,
        micro: has('micro') ? o.micro : undefined,
        echo: has('echo') ? o.echo : undefined,
        interest: has('interest') ? o.interest : undefined,
        files: has('files') ? o.files : undefined,
        ftp: has('ftp') ? o.ftp : undefined,
        threads: has('threads') ? o.threads : undefined,
        soak: has('soak') ? o.soak : undefined,
      },
      scaling, micro, echo, interest, fileTransfer: files, ftp, threads, soak, targets,
      files: [],
    };
  }
}

/** Prints and writes a saved run again (tables, CSV, charts, Markdown) without measuring anything. */
export async function redrawSuite(file: string, o: Pick<SuiteOptions, 'outDir' | 'jsonFile' | 'charts' | 'print'>): Promise<SuiteResult> {
  const result = readRun(file);
  printDestination(o);
  result.files = [];
  printTables(result, o.print);
  await writeFiles(result, o);
  o.print(`\nWrote ${result.files.join(', ')} (from ${file})`);
  return result;
}

/** The first line: where the files go (the default is a folder of the current directory). */
function printDestination(o: Pick<SuiteOptions, 'outDir' | 'jsonFile' | 'print'>): void {
  o.print(`iomux bench: results go to ${path.resolve(o.outDir)}${o.jsonFile ? ` and ${path.resolve(o.jsonFile)}` : ''} (--out to change)`);
}

function printTables(r: SuiteResult, print: (text: string) => void): void {
  print(`iomux bench ${r.version} — ${machineSummary(r.machine)}; load average ${r.machine.loadAverage.join(' ')}`);
  for (const { table, notes } of resultTables(r)) {
    print('');
    print(terminalTable({ ...table, title: [table.title, ...notes.map((n) => `  · ${n}`)].join('\n') }));
  }
}

async function writeFiles(result: SuiteResult, o: Pick<SuiteOptions, 'outDir' | 'jsonFile' | 'charts'>): Promise<void> {
  fs.mkdirSync(o.outDir, { recursive: true });
  const shown = (file: string) => {
    const relative = path.relative(process.cwd(), path.resolve(file));
    return relative.startsWith('..') ? path.resolve(file) : relative;
  };
  const write = (file: string, text: string) => {
    fs.writeFileSync(file, text);
    result.files.push(shown(file));
  };
  for (const [name, text] of Object.entries(csvFiles(result))) write(path.join(o.outDir, name), text);
  const charts: Chart[] = [];
  if (o.charts) {
    charts.push(...await renderCharts(result.scaling, result.echo, subtitles(result), result.ftp ?? null, result.soak ?? null));
    for (const chart of charts) write(path.join(o.outDir, chart.file), chart.svg);
  }
  write(path.join(o.outDir, 'report.html'), htmlReport(result, charts));
  write(path.join(o.outDir, 'results.md'), markdownReport(result));
  const jsonPath = path.join(o.outDir, 'results.json');
  result.files.push(shown(jsonPath));
  if (o.jsonFile) result.files.push(shown(o.jsonFile));
  const json = `${JSON.stringify(result, null, 2)}\n`;
  fs.writeFileSync(jsonPath, json);
  if (o.jsonFile) {
    fs.mkdirSync(path.dirname(path.resolve(o.jsonFile)), { recursive: true });
    fs.writeFileSync(o.jsonFile, json);
  }
}
