/**
 * The FTP benchmark, side by side in one run: `iomux ftp serve` on epoll, poll and select,
 * pyftpdlib (the anchor), vsftpd (the C server distributions ship) and ftp-srv (the Node FTP server
 * on npm); bench/ftp-servers.ts starts them and measures their cost. Two parts:
 *
 * - pyftpdlib's ftpbench procedure (bench/ftp-load.c is the client) against each server in turn.
 *   For every step: its result (MB/s, or seconds for the concurrent steps), the server's CPU time
 *   during it (the run time of all its processes, from /proc: the cost that does not depend on how
 *   busy the machine is), and the server's memory after it.
 * - Whole-file transfers (bench/ftp-transfers.ts): RETR and STOR of one large file with curl, the C
 *   client and Python's ftplib, every server running at once, interleaved rounds, medians.
 *
 * Servers run pinned to one core with the load on the other when `taskset` exists, each in a
 * session of its own, and all in one CPU cgroup where one can be made (bench/cpu-group.ts).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { CpuGroup, serverGroup } from './cpu-group';
import { pinning, withPin } from './echo';
import { FTP_SERVERS, FtpServerName, RunningFtpServer, startFtpServer, unfitFtpServer } from './ftp-servers';
import { RETR_NAME, runTransfers, TransferClient, TransferResult, writeTestFile } from './ftp-transfers';
import { programPath } from './programs';
import { ratio } from './stats';

export { FTP_SERVERS, FtpServerName };

/** ftpbench's steps, in its order. */
export const FTP_STEPS = ['stor', 'retr', 'login', 'stor-idle', 'retr-idle', 'retr-n', 'stor-n', 'quit'] as const;
export type FtpStepName = (typeof FTP_STEPS)[number];
export const THROUGHPUT_STEPS: readonly FtpStepName[] = ['stor', 'retr', 'stor-idle', 'retr-idle'];
/** The servers of the whole-file part: a single transfer does not exercise the readiness mechanism, so iomux runs on epoll only. */
export const TRANSFER_SERVERS: readonly FtpServerName[] = ['iomux-epoll', 'pyftpdlib', 'vsftpd', 'ftp-srv'];

export interface FtpOptions {
  servers: FtpServerName[];
  /** N: concurrent clients in the login, retr-n, stor-n and quit steps (and idle in stor-idle, retr-idle). */
  clients: number;
  /** Bytes each client moves in retr-n and stor-n. */
  fileSize: number;
  /** Bytes of each whole transfer in the one-client throughput steps. */
  transferSize: number;
  /** How long each throughput step keeps transferring. */
  seconds: number;
  /** Server on one core, load on the other (taskset). */
  pin: boolean;
  /** The whole-file part's clients (none: the part is skipped). */
  wholeClients: TransferClient[];
  /** Bytes of each whole-file transfer. */
  wholeSize: number;
  /** Interleaved rounds of the whole-file part. */
  wholeRounds: number;
}

export interface FtpStep {
  step: FtpStepName;
  /** Throughput steps. */
  mbPerSec: number | null;
  /** Wall time of the step (the result of the concurrent steps). */
  seconds: number;
  bytes: number | null;
  /** The server's CPU time during the step (user + system, all threads and processes). */
  serverCpuSec: number;
  /** The server's memory after the step: VmRSS, or the Pss of a forking server's processes summed. */
  rssMiB: number;
  /** Concurrent steps: connections that got no greeting within 3 s and were made again (a full listen backlog). */
  retries?: number;
}

export interface FtpRun {
  server: FtpServerName;
  steps: FtpStep[];
  /** Memory before the first step (after one warm-up upload). */
  rssStartMiB: number;
  /** (memory after login − memory before it) / N. */
  rssPerIdleClientKiB: number | null;
}

export interface FtpSkip {
  server: FtpServerName;
  reason: string;
}

export interface FtpResult {
  options: FtpOptions;
  notes: string[];
  runs: FtpRun[];
  skips: FtpSkip[];
  /** The whole-file part (null when it had no clients or servers). */
  whole: TransferResult | null;
}

export function ftpCellCount(o: FtpOptions): number {
  const wholeServers = o.servers.filter((s) => TRANSFER_SERVERS.includes(s)).length;
  return o.servers.length + (wholeServers > 0 ? o.wholeRounds * o.wholeClients.length * 2 : 0);
}

interface LoadLine {
  step: string;
  bytes?: number;
  seconds?: number;
  mbPerSec?: number;
  clients?: number;
  retries?: number;
}

/** Runs the load against `server`, sampling its CPU and memory at every step boundary. */
function runLoad(file: string, args: string[], server: RunningFtpServer): Promise<{ steps: FtpStep[]; rssStartMiB: number }> {
  return new Promise((resolve, reject) => {
    const load = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    load.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const steps: FtpStep[] = [];
    let lastCpu = server.cpuSeconds();
    let rssStartMiB = 0;
    const lines = readline.createInterface({ input: load.stdout! });
    lines.on('line', async (text) => {
      // A throw here (a line that is not JSON, a /proc read that fails) would be an unhandled rejection: it fails the run.
      try {
        const line = JSON.parse(text) as LoadLine;
        // The last line: the load exits without waiting, and the server is stopped meanwhile.
        if (line.step === 'done') return;
        // The load waits for our go-ahead after each other line, so one line at a time gets here.
        // A forking server's sessions exit after QUIT; any server may still be finishing a step's last transfer.
        await (line.step === 'quit' ? server.settled() : server.quiet());
        const cpu = server.cpuSeconds();
        const rss = server.memoryMiB();
        if (line.step === 'start') {
          rssStartMiB = rss;
        } else if ((FTP_STEPS as readonly string[]).includes(line.step)) {
          steps.push({
            step: line.step as FtpStepName, mbPerSec: line.mbPerSec ?? null, seconds: line.seconds ?? 0, bytes: line.bytes ?? null,
            serverCpuSec: cpu - lastCpu, rssMiB: rss, ...(line.retries ? { retries: line.retries } : {}),
          });
        }
        lastCpu = cpu;
        load.stdin!.write('\n');
      } catch (err) {
        load.kill();
        reject(err);
      }
    });
    load.once('error', reject);
    load.once('exit', (code) => {
      if (code === 0 && steps.length === FTP_STEPS.length) resolve({ steps, rssStartMiB });
      else reject(new Error(`bench-ftp-load failed (${code}): ${stderr.trim() || `${steps.length} of ${FTP_STEPS.length} steps`}`));
    });
  });
}

export async function runFtp(options: FtpOptions, onCell: (label: string) => void = () => {}): Promise<FtpResult> {
  const group = serverGroup();
  try {
    return await runFtpIn('reason' in group ? null : group, options, onCell, 'reason' in group ? group.reason : null);
  } finally {
    if (!('reason' in group)) group.remove();
  }
}

async function runFtpIn(group: CpuGroup | null, options: FtpOptions, onCell: (label: string) => void, noGroup: string | null): Promise<FtpResult> {
  const runs: FtpRun[] = [];
  const skips: FtpSkip[] = [];
  const cores = pinning(options.pin);
  const load = programPath('bench-ftp-load');
  for (const server of options.servers) {
    onCell(`ftp ${server} (N=${options.clients})`);
    const reason = unfitFtpServer(server, options.clients);
    if (reason) {
      skips.push({ server, reason });
      continue;
    }
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-ftp-bench-'));
    try {
      const running = await startFtpServer(server, path.join(base, 'root'), base, cores?.[0], group);
      try {
        const { file: loadFile, args: loadArgs } = withPin({ file: load, args: [
          '--port', String(running.port), '--user', running.user, '--pass', running.password, '--clients', String(options.clients),
          '--file-size', String(options.fileSize), '--transfer-size', String(options.transferSize), '--seconds', String(options.seconds),
        ] }, cores?.[1]);
        const { steps, rssStartMiB } = await runLoad(loadFile, loadArgs, running);
        const login = steps.find((s) => s.step === 'login');
        const before = steps[steps.findIndex((s) => s.step === 'login') - 1]?.rssMiB ?? rssStartMiB;
        runs.push({
          server, steps, rssStartMiB,
          rssPerIdleClientKiB: login ? ((login.rssMiB - before) * 1024) / options.clients : null,
        });
      } finally {
        await running.stop();
      }
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  }
  const whole = await runWhole(options, skips, cores, group, onCell);
  const notes = [
    `pyftpdlib's ftpbench procedure with a C client (bench/ftp-load.c, 256 KiB reads and writes): one client's STOR and RETR of whole ${mib(options.transferSize)} transfers for ${options.seconds} s; ` +
    `${options.clients} clients connecting and logging in at once; the same STOR and RETR with them idle; ${options.clients} concurrent RETRs and STORs of ${mib(options.fileSize)}; ${options.clients} concurrent QUITs`,
    cores ? `server pinned to core ${cores[0]}, load to core ${cores[1]} (taskset)` : 'no pinning (taskset missing, one core, or --no-pin)',
    `every server in a session of its own (a scheduler autogroup, as each vsftpd session process makes itself)${group
      ? `, and all their processes in one CPU cgroup (${group.description}): vsftpd's sessions share one group's CPU like any other server's processes`
      : `; no CPU cgroup (${noGroup}): under contention from other work on its core, each vsftpd session process has a group's share of the CPU`}`,
    'server CPU = the run time of all the server\'s processes during the step (their threads\' /proc/PID/task/TID/schedstat, exact to the ns; vsftpd\'s session processes too, alive or reaped: cutime + cstime); memory = VmRSS after the step (vsftpd: the Pss of its processes summed)',
    `a concurrent step's seconds run from the first client's start to the last client's final reply, by the clients' own clocks`,
    'iomux runs `iomux ftp serve` (attached to Node\'s loop; scrypt password checks, the first login of a user costs one scrypt and later ones a remembered HMAC); pyftpdlib runs under /usr/bin/python3 as its CLI sets it up (plain-text password, INFO logging like iomux\'s) but without the CLI\'s cap of 512 sessions; ' +
    'vsftpd 3 runs standalone with run_as_launching_user (anonymous logins, no password check, no privilege separation; a process per session); ftp-srv logs nothing',
  ];
  if (whole) {
    notes.push(`whole files: RETR and STOR of ${mib(whole.size)} with curl, the C client (256 KiB reads and writes) and Python's ftplib (retrbinary/storbinary, blocksize 65536), ` +
      `each in its own session, each STOR to a new file (the last one removed first, untimed); ${whole.rounds} interleaved round${whole.rounds === 1 ? '' : 's'} (every client, direction and server in turn), medians; rate from the client (transfer command to 226), ` +
      'server CPU from before the client started until the server was idle again (its session over, any file it closes in the background closed)');
  }
  return { options, notes, runs, skips, whole };
}

/** The whole-file part: every server of it started at once (one root, one RETR file), then the interleaved rounds. */
async function runWhole(options: FtpOptions, skips: FtpSkip[], cores: [string, string] | null, group: CpuGroup | null,
  onCell: (label: string) => void): Promise<TransferResult | null> {
  const names = options.servers.filter((s) => TRANSFER_SERVERS.includes(s) && !skips.some((skip) => skip.server === s));
  if (names.length === 0 || options.wholeClients.length === 0) return null;
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-ftp-whole-'));
  const running: RunningFtpServer[] = [];
  try {
    const root = path.join(base, 'root');
    for (const name of names) {
      const own = path.join(base, name);
      fs.mkdirSync(own);
      running.push(await startFtpServer(name, root, own, cores?.[0], group));
    }
    const source = path.join(base, 'source.bin');
    writeTestFile(source, options.wholeSize);
    fs.copyFileSync(source, path.join(running[0].home, RETR_NAME));
    return await runTransfers(running, options.wholeClients, options.wholeSize, options.wholeRounds, source, cores?.[1], onCell);
  } finally {
    for (const server of running) await server.stop();
    fs.rmSync(base, { recursive: true, force: true });
  }
}

function mib(bytes: number): string {
  return `${Math.round((bytes / 2 ** 20) * 10) / 10} MiB`;
}

/** iomux-epoll's median over `other`'s for one whole-file cell: MB/s, or server CPU per MB. */
export function wholeRatio(result: FtpResult, client: TransferClient, direction: 'retr' | 'stor', metric: 'mbPerSec' | 'cpuMsPerMB',
  other: FtpServerName, server: FtpServerName = 'iomux-epoll'): number | null {
  const value = (name: FtpServerName) => result.whole?.cells.find((c) => c.server === name && c.client === client && c.direction === direction)?.[metric].median;
  return ratio(value(server), value(other));
}

/** iomux-epoll's value over `other`'s for one step: MB/s for throughput steps, seconds otherwise. */
export function stepRatio(result: FtpResult, step: FtpStepName, other: FtpServerName, server: FtpServerName = 'iomux-epoll'): number | null {
  const value = (name: FtpServerName) => {
    const s = result.runs.find((r) => r.server === name)?.steps.find((x) => x.step === step);
    if (!s) return null;
    return THROUGHPUT_STEPS.includes(step) ? s.mbPerSec : s.seconds;
  };
  return ratio(value(server), value(other));
}
