/** The FTP part's tables and CSV files (bench/ftp.ts measures). */
import { num, spreadText } from './format';
import { FTP_STEPS, FtpResult, FtpStep, FtpStepName, stepRatio, THROUGHPUT_STEPS, wholeRatio } from './ftp';
import type { FtpServerName } from './ftp-servers';
import { DIRECTIONS, TRANSFER_CLIENTS, TransferClient } from './ftp-transfers';
import { ratioText, TableData } from './report';

/** The servers iomux-epoll is compared with, in the tables' ratio columns. */
const ANCHORS: readonly FtpServerName[] = ['pyftpdlib', 'vsftpd', 'ftp-srv'];

/** What each ftpbench step measures, as its row label says. */
export function ftpStepLabel(step: FtpStepName, clients: number): string {
  switch (step) {
    case 'stor': return 'STOR, one client (MB/s)';
    case 'retr': return 'RETR, one client (MB/s)';
    case 'login': return `${clients} clients connect + login (s)`;
    case 'stor-idle': return `STOR with ${clients} idle clients (MB/s)`;
    case 'retr-idle': return `RETR with ${clients} idle clients (MB/s)`;
    case 'retr-n': return `${clients} concurrent RETR (s)`;
    case 'stor-n': return `${clients} concurrent STOR (s)`;
    case 'quit': return `${clients} concurrent QUIT (s)`;
  }
}

/** A step's server CPU: ms per MB moved on throughput steps, seconds on the others. */
export function ftpCpu(step: FtpStep | undefined): number | null {
  if (step === undefined) return null;
  if (step.bytes !== null && step.bytes > 0) return (step.serverCpuSec * 1000) / (step.bytes / 2 ** 20);
  return step.serverCpuSec;
}

const CLIENT_LABELS: Readonly<Record<TransferClient, string>> = { curl: 'curl', c: 'C client', ftplib: 'ftplib 64 KiB' };

/** ftpbench's tables (a row per step, a column per server, then iomux-epoll's ratios), then the whole-file tables. */
export function ftpTables(r: FtpResult): TableData[] {
  const servers = r.runs.map((run) => run.server);
  const anchors = ANCHORS.filter((a) => servers.includes(a));
  const step = (server: string, name: FtpStepName) => r.runs.find((run) => run.server === server)?.steps.find((s) => s.step === name);
  const n = r.options.clients;
  const results = FTP_STEPS.map((name) => [
    ftpStepLabel(name, n),
    ...servers.map((server) => {
      const s = step(server, name);
      return s ? num(THROUGHPUT_STEPS.includes(name) ? s.mbPerSec : s.seconds) : '–';
    }),
    ...anchors.map((anchor) => ratioText(stepRatio(r, name, anchor))),
  ]);
  // The same login step as a rate: what "logins per second" means here (N at once, each a TCP connect, USER, PASS, TYPE).
  const loginRate = (server: string) => {
    const s = step(server, 'login');
    return s && s.seconds > 0 ? n / s.seconds : null;
  };
  results.splice(FTP_STEPS.indexOf('login') + 1, 0, [`connect + login rate, ${n} at once (logins/s)`, ...servers.map((server) => num(loginRate(server))),
    ...anchors.map((anchor) => {
      const ours = loginRate('iomux-epoll');
      const theirs = loginRate(anchor);
      return ratioText(ours !== null && theirs !== null ? ours / theirs : null);
    })]);
  // The server's own cost, whoever limited the rate: per MB moved on the one-client steps, in all on the rest.
  const cpu = FTP_STEPS.map((name) => [ftpStepLabel(name, n).replace(/\((MB\/)?s\)$/, THROUGHPUT_STEPS.includes(name) ? '(ms per MB)' : '(s)'),
    ...servers.map((server) => num(ftpCpu(step(server, name))))]);
  const memory = [
    ['start', ...r.runs.map((run) => num(run.rssStartMiB))],
    ...FTP_STEPS.map((name) => [`after ${name}`, ...servers.map((server) => num(step(server, name)?.rssMiB))]),
    ['per idle client (KiB)', ...r.runs.map((run) => num(run.rssPerIdleClientKiB))],
  ];
  const footer = r.skips.map((skip) => `${skip.server} skipped: ${skip.reason}`);
  for (const run of r.runs) {
    for (const s of run.steps.filter((x) => x.retries)) {
      footer.push(`${run.server}, ${s.step}: ${s.retries} connections got no greeting within 3 s and were made again (a full listen backlog: SYN cookies)`);
    }
  }
  return [
    { title: `FTP (ftpbench's steps, N=${n}): MB/s higher is better, seconds lower`,
      head: ['step', ...servers, ...anchors.map((a) => `iomux-epoll / ${a}`)], rows: results, footer },
    { title: 'FTP: server CPU time (user + system, all its processes; lower is better)', head: ['step', ...servers], rows: cpu },
    { title: 'FTP: server memory (MiB: VmRSS; vsftpd, which forks: the Pss of its processes summed)', head: ['after', ...servers], rows: memory },
    ...wholeTables(r),
  ];
}

/** The whole-file part: MB/s and the server's CPU per MB, a row per direction and client, medians (min–max) of the rounds. */
function wholeTables(r: FtpResult): TableData[] {
  const whole = r.whole;
  if (!whole || whole.cells.length === 0) return [];
  const servers = [...new Set(whole.cells.map((c) => c.server))];
  const anchors = ANCHORS.filter((a) => servers.includes(a) && a !== 'ftp-srv').concat(servers.includes('ftp-srv') ? ['ftp-srv'] : []);
  const clients = TRANSFER_CLIENTS.filter((client) => whole.cells.some((c) => c.client === client));
  const size = whole.size >= 2 ** 30 ? `${num(whole.size / 2 ** 30)} GiB` : `${num(whole.size / 2 ** 20)} MiB`;
  const table = (metric: 'mbPerSec' | 'cpuMsPerMB', unit: string, title: string): TableData => ({
    title,
    head: ['transfer', ...servers, ...anchors.map((a) => `iomux-epoll / ${a}`)],
    rows: DIRECTIONS.flatMap((direction) => clients.map((client) => [
      `${direction.toUpperCase()}, ${CLIENT_LABELS[client]} (${unit})`,
      ...servers.map((server) => spreadText(whole.cells.find((c) => c.server === server && c.client === client && c.direction === direction)?.[metric])),
      ...anchors.map((anchor) => ratioText(wholeRatio(r, client, direction, metric, anchor))),
    ])),
    footer: whole.skips.map((skip) => `${skip.client} skipped: ${skip.reason}`),
  });
  return [
    table('mbPerSec', 'MB/s', `FTP: whole files of ${size}, median (min–max) of ${whole.rounds} interleaved round${whole.rounds === 1 ? '' : 's'}: MB/s, higher is better`),
    table('cpuMsPerMB', 'ms per MB', `FTP: whole files of ${size}: the server's CPU per MB moved (user + system; lower is better)`),
  ];
}

/** ftp.csv (ftpbench's steps) and ftp-whole.csv (the whole-file cells). */
export function ftpCsvRows(r: FtpResult): { steps: unknown[][]; whole: unknown[][] } {
  const steps: unknown[][] = [];
  for (const run of r.runs) {
    for (const s of run.steps) steps.push([run.server, s.step, r.options.clients, s.mbPerSec, s.seconds, s.bytes, s.serverCpuSec, s.rssMiB]);
    steps.push([run.server, 'rss-per-idle-client-kib', r.options.clients, null, null, null, null, run.rssPerIdleClientKiB]);
  }
  const whole = (r.whole?.cells ?? []).map((c) => [c.server, c.client, c.direction, r.whole!.size, c.mbPerSec.count,
    c.mbPerSec.median, c.mbPerSec.min, c.mbPerSec.max, c.cpuMsPerMB.median, c.cpuMsPerMB.min, c.cpuMsPerMB.max]);
  return { steps, whole };
}

export const FTP_WHOLE_CSV_HEAD = ['server', 'client', 'direction', 'bytes', 'rounds', 'mb_per_sec_median', 'mb_per_sec_min', 'mb_per_sec_max',
  'server_cpu_ms_per_mb_median', 'server_cpu_ms_per_mb_min', 'server_cpu_ms_per_mb_max'];
