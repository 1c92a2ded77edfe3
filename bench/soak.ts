/**
 * Soak and churn (`iomux bench --soak`, `npm run bench:soak`; not in the default suite): does a server
 * hold 10,000 connections, and survive a million connects and closes, with flat memory and
 * descriptors? Each server (iomux serve, Node's net echo) runs as its own process, the load generator
 * (bench/soak-load.c) as another, pinned to different cores where taskset exists.
 *
 * - Hold, on a fresh server: first C = 100 connections (the reference p99), then C = 10,000, each
 *   connection echoing one 64-byte message per second; the server's RSS and open descriptors
 *   (/proc/PID/status VmRSS, /proc/PID/fd) and the kernel's TCP counters (retransmits, timeouts,
 *   listen drops) are read at every sample of the load generator (every second), beside its p99, its
 *   slowest echo and how far behind its own schedule it sent (its own stalls).
 * - Churn, on another fresh server: a warm-up of connect -> echo -> close cycles, then the run
 *   (1,000,000 cycles, 100 in parallel); RSS and descriptors after the warm-up and after the run,
 *   once the server has closed its side of every connection.
 */
import * as fs from 'node:fs';
import { EchoServerName, pinning, RunningServer, serverCommand, startServer, withPin } from './echo';
import type { TargetCheck } from './targets';
import { programPath } from './programs';
import { readTcpCounters, TcpCounters, tcpDelta } from './tcp-counters';
import { spawn } from 'node:child_process';

export interface SoakOptions {
  servers: EchoServerName[];
  /** Connections held at once (the 10,000). */
  connections: number;
  /** The reference: p99 at this many connections, same per-connection rate. */
  baselineConnections: number;
  holdMs: number;
  baselineMs: number;
  /** Each held connection sends one message per interval. */
  intervalMs: number;
  /** The load generator reports (and the server's RSS and descriptors are read) this often. */
  sampleMs: number;
  cycles: number;
  parallel: number;
  warmupCycles: number;
  size: number;
  pin: boolean;
}

export function soakPreset(): SoakOptions {
  return {
    servers: ['iomux-epoll', 'node'],
    connections: 10_000,
    baselineConnections: 100,
    holdMs: 60_000,
    baselineMs: 10_000,
    intervalMs: 1000,
    // Every second: a stall of a second shows as itself, not averaged into five.
    sampleMs: 1000,
    cycles: 1_000_000,
    parallel: 100,
    // V8 sizes its heap to the load: in a run with 10,000 warm-up cycles, RSS rose for the next ~200,000
    // and was flat (within 1 %) for the remaining 800,000. The target compares with the plateau.
    warmupCycles: 200_000,
    size: 64,
    pin: true,
  };
}

/** bench/soak-load.c's "done" line in hold mode. */
export interface HoldReport {
  connections: number;
  /** Connections still open (none failed) when the run ended. */
  open: number;
  intervalMs: number;
  durationMs: number;
  warmupMs: number;
  connectMs: number;
  messages: number;
  /** Messages in the latency figures (sent after the warm-up). */
  measured: number;
  /** Turns skipped because the previous echo had not come back. */
  late: number;
  bytesSent: number;
  bytesVerified: number;
  latencyUs: { p50: number; p99: number; p999: number; max: number };
  errors: number;
  firstError: string;
}

/** bench/soak-load.c's "done" line in churn mode. */
export interface ChurnReport {
  cycles: number;
  completed: number;
  parallel: number;
  seconds: number;
  cyclesPerSec: number;
  bytesSent: number;
  bytesVerified: number;
  cycleUs: { p50: number; p99: number; max: number };
  errors: number;
  firstError: string;
}

/** The server's memory and descriptors at one moment. */
export interface ServerState {
  rssBytes: number;
  fds: number;
}

export interface SoakSample extends ServerState {
  phase: 'baseline' | 'hold' | 'churn';
  /** Since the phase began (hold: since every connection was up). */
  elapsedMs: number;
  /** hold: messages echoed in this sample's interval and their p99; churn: cycles completed so far. */
  messages?: number;
  p99Us?: number;
  /** hold: the slowest echo of the interval (absent in runs saved before it was kept). */
  maxUs?: number;
  /** hold: turns skipped in the interval because the previous echo was not back. */
  late?: number;
  /** hold: how far behind its own schedule the load generator sent, at most: its stalls, not the server's. */
  sendLagMaxUs?: number;
  /** hold: what the kernel's TCP counters did in the interval (the whole machine's). */
  tcp?: TcpCounters | null;
  cycles?: number;
}

export interface SoakRun {
  server: EchoServerName;
  hold: {
    listening: ServerState;
    baseline: HoldReport;
    hold: HoldReport;
    /** The most RSS and descriptors seen while the connections were held, and the state once they had all closed again. */
    holding: ServerState;
    closed: ServerState;
    samples: SoakSample[];
  };
  churn: {
    listening: ServerState;
    warmup: ChurnReport;
    afterWarmup: ServerState;
    run: ChurnReport;
    after: ServerState;
    samples: SoakSample[];
  };
}

export interface SoakResult {
  options: SoakOptions;
  notes: string[];
  runs: SoakRun[];
}

/** Four long cells per server: the reference hold, the hold, the churn warm-up, the churn. */
export function soakCellCount(o: SoakOptions): number {
  return o.servers.length * 4;
}

export function serverState(pid: number): ServerState {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  if (!line) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return { rssBytes: Number(/(\d+)/.exec(line)![1]) * 1024, fds: fs.readdirSync(`/proc/${pid}/fd`).length };
}

/** How long the server may take to close its side of every connection after the load generator has gone. */
const SETTLE_TIMEOUT_MS = 15_000;

/**
 * Waits until the server holds `fds` descriptors again (it closes its side when it reads the clients'
 * FIN, which can be after the load generator has exited), or the timeout; returns its state then.
 */
async function settle(pid: number, fds: number): Promise<ServerState> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  let state = serverState(pid);
  while (state.fds !== fds && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    state = serverState(pid);
  }
  return state;
}

type Line = { type: string } & Record<string, unknown>;

/** Runs the load generator, calling onLine for each JSON line as it comes; resolves with its "done" line. */
function runLoad<T>(args: string[], core: string | undefined, onLine: (line: Line) => void): Promise<T> {
  const command = withPin({ file: programPath('bench-soak-load'), args }, core);
  return new Promise((resolve, reject) => {
    const child = spawn(command.file, command.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let pending = '';
    let stderr = '';
    let done: T | null = null;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const text = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (text === '') continue;
        const line = JSON.parse(text) as Line;
        if (line.type === 'done') done = line as unknown as T;
        else onLine(line);
      }
    });
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0 && done) resolve(done);
      else reject(new Error(`bench-soak-load ${args.join(' ')} failed (${code ?? signal}): ${stderr.trim() || 'no report'}`));
    });
  });
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

async function holdPhase(server: EchoServerName, o: SoakOptions, cores: [string, string] | null,
  onCell: (label: string) => void, onStatus: (label: string) => void): Promise<SoakRun['hold']> {
  const running = await startServer(withPin(serverCommand(server), cores?.[0]));
  try {
    const pid = running.child.pid!;
    const listening = serverState(pid);
    const samples: SoakSample[] = [];
    let lastCounters = readTcpCounters();
    const hold = (phase: 'baseline' | 'hold', connections: number, ms: number) => {
      return runLoad<HoldReport>([
        '--mode', 'hold', '--port', String(running.port), '--connections', String(connections), '--interval-ms', String(o.intervalMs),
        '--duration-ms', String(ms), '--warmup-ms', String(Math.min(o.intervalMs, ms / 2)), '--report-ms', String(o.sampleMs),
        '--size', String(o.size),
      ], cores?.[1], (line) => {
        const state = serverState(pid);
        const counters = readTcpCounters();
        const tcp = tcpDelta(lastCounters, counters);
        lastCounters = counters;
        if (line.type === 'connected') {
          samples.push({ phase, elapsedMs: 0, ...state });
        } else if (line.type === 'sample') {
          samples.push({ phase, elapsedMs: Number(line.elapsedMs), messages: Number(line.messages), p99Us: Number(line.p99Us),
            maxUs: Number(line.maxUs), late: Number(line.late), sendLagMaxUs: Number(line.sendLagMaxUs), tcp, ...state });
          onStatus(`${server} C=${connections}: ${Math.round(Number(line.elapsedMs) / 1000)}/${ms / 1000} s, p99 ${Number(line.p99Us).toFixed(0)} µs, `
            + `RSS ${mib(state.rssBytes)} MiB, ${state.fds} fds`);
        }
      });
    };
    onCell(`${server} hold C=${o.baselineConnections}`);
    const baseline = await hold('baseline', o.baselineConnections, o.baselineMs);
    await settle(pid, listening.fds);
    onCell(`${server} hold C=${o.connections}`);
    const held = await hold('hold', o.connections, o.holdMs);
    const closed = await settle(pid, listening.fds);
    const during = samples.filter((s) => s.phase === 'hold');
    const holding = { rssBytes: Math.max(...during.map((s) => s.rssBytes)), fds: Math.max(...during.map((s) => s.fds)) };
    return { listening, baseline, hold: held, holding, closed, samples };
  } finally {
    await running.stop();
  }
}

async function churnPhase(server: EchoServerName, o: SoakOptions, cores: [string, string] | null,
  onCell: (label: string) => void, onStatus: (label: string) => void): Promise<SoakRun['churn']> {
  const running: RunningServer = await startServer(withPin(serverCommand(server), cores?.[0]));
  try {
    const pid = running.child.pid!;
    const listening = serverState(pid);
    const samples: SoakSample[] = [];
    const churn = (cycles: number, record: boolean) => runLoad<ChurnReport>([
      '--mode', 'churn', '--port', String(running.port), '--cycles', String(cycles), '--parallel', String(o.parallel),
      '--report-ms', String(o.sampleMs), '--size', String(o.size),
    ], cores?.[1], (line) => {
      if (line.type !== 'progress') return;
      const state = serverState(pid);
      if (record) samples.push({ phase: 'churn', elapsedMs: Number(line.elapsedMs), cycles: Number(line.cycles), ...state });
      onStatus(`${server} churn: ${Number(line.cycles).toLocaleString('en-US')}/${cycles.toLocaleString('en-US')} cycles, `
        + `RSS ${mib(state.rssBytes)} MiB, ${state.fds} fds`);
    });
    onCell(`${server} churn warm-up (${o.warmupCycles} cycles)`);
    const warmup = await churn(o.warmupCycles, false);
    const afterWarmup = await settle(pid, listening.fds);
    onCell(`${server} churn (${o.cycles} cycles)`);
    const run = await churn(o.cycles, true);
    const after = await settle(pid, afterWarmup.fds);
    samples.push({ phase: 'churn', elapsedMs: run.seconds * 1000, cycles: run.completed, ...after });
    return { listening, warmup, afterWarmup, run, after, samples };
  } finally {
    await running.stop();
  }
}

export async function runSoak(o: SoakOptions, onCell: (label: string) => void = () => {},
  onStatus: (label: string) => void = () => {}): Promise<SoakResult> {
  const cores = pinning(o.pin);
  const runs: SoakRun[] = [];
  for (const server of o.servers) {
    const hold = await holdPhase(server, o, cores, onCell, onStatus);
    const churn = await churnPhase(server, o, cores, onCell, onStatus);
    runs.push({ server, hold, churn });
  }
  const notes = [
    `hold: ${o.baselineConnections} and then ${o.connections} connections to one fresh server process, each sending ${o.size} B every `
    + `${o.intervalMs} ms (staggered), one message in flight at most; p99 over the run after its first ${o.intervalMs} ms`,
    `churn: a fresh server, ${o.warmupCycles.toLocaleString('en-US')} warm-up cycles, then ${o.cycles.toLocaleString('en-US')} connect → `
    + `${o.size} B echo → close cycles, ${o.parallel} in parallel; client sockets from 127.0.0.1–254 (TIME_WAIT spreads over source addresses)`,
    'RSS = VmRSS of /proc/PID/status, descriptors = entries of /proc/PID/fd, read whenever the load generator reports and once the server has closed every connection',
    'every echoed byte is compared with what was sent; errors count refused or reset connections, early closes and wrong bytes',
    cores ? `server pinned to core ${cores[0]}, load generator to core ${cores[1]} (taskset)` : 'no pinning (taskset missing, one core, or --no-pin)',
  ];
  return { options: o, notes, runs };
}

function check(target: string, value: number | null, threshold: number, detail: string, unit?: string): TargetCheck {
  return { target, value, kind: 'max', threshold, met: value === null ? null : value <= threshold, detail, ...(unit ? { unit } : {}) };
}

/** The targets, for every server run (Node's net too, for comparison). */
export function checkSoakTargets(r: SoakResult | null | undefined): TargetCheck[] {
  if (!r) return [];
  const checks: TargetCheck[] = [];
  const c = r.options.connections;
  for (const run of r.runs) {
    const { hold, churn } = run;
    const reports = [hold.baseline, hold.hold, churn.warmup, churn.run];
    const errors = reports.reduce((sum, x) => sum + x.errors, 0);
    const lost = reports.reduce((sum, x) => sum + x.bytesSent - x.bytesVerified, 0);
    const first = reports.find((x) => x.errors > 0)?.firstError;
    checks.push(check(`${run.server} soak: errors (hold and churn)`, errors, 0, first ? `first: ${first}` : 'refused or reset connections, early closes, wrong bytes', 'errors'));
    checks.push(check(`${run.server} soak: bytes sent but not echoed back`, lost, 0, 'every echoed byte is verified', 'B'));
    checks.push(check(`${run.server} hold: descriptors after ${c} connections closed − listening`, Math.abs(hold.closed.fds - hold.listening.fds), 0,
      `${hold.listening.fds} listening, ${hold.holding.fds} holding, ${hold.closed.fds} after`, 'fds'));
    checks.push(check(`${run.server} churn: descriptors after − after warm-up`, Math.abs(churn.after.fds - churn.afterWarmup.fds), 0,
      `${churn.afterWarmup.fds} after the warm-up, ${churn.after.fds} after ${churn.run.completed.toLocaleString('en-US')} cycles`, 'fds'));
    checks.push(check(`${run.server} churn: RSS after / RSS after warm-up`, churn.afterWarmup.rssBytes > 0 ? churn.after.rssBytes / churn.afterWarmup.rssBytes : null,
      1.1, `${mib(churn.afterWarmup.rssBytes)} MiB after the warm-up, ${mib(churn.after.rssBytes)} MiB after`));
    const p99 = hold.hold.latencyUs.p99;
    const reference = hold.baseline.latencyUs.p99;
    checks.push(check(`${run.server} hold: p99 at C=${c} / p99 at C=${r.options.baselineConnections}`, p99 > 0 && reference > 0 ? p99 / reference : null, 2,
      `${p99.toFixed(0)} µs against ${reference.toFixed(0)} µs, the same rate per connection`));
  }
  return checks;
}
