/**
 * Counting a running server's system calls over a window: with perf's syscall tracepoints
 * (`perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_NAME… -p PID`, Debian's linux-perf) where
 * they can be read, with `strace -c -f -p PID` otherwise. perf counts in the kernel and barely slows
 * the server; strace stops it at every call, which changes how much each wait batches (an io_uring
 * server's calls per message drop tenfold under it), so a count says which tool made it.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { onPath } from './machine';

export type SyscallTool = 'perf' | 'strace';

/** The calls counted one by one (the rest is in the total): an event loop's, and what surrounds them. */
const COUNTED_SYSCALLS = [
  'epoll_wait', 'epoll_pwait', 'epoll_pwait2', 'epoll_ctl', 'io_uring_enter', 'poll', 'ppoll', 'select', 'pselect6',
  'read', 'readv', 'recvfrom', 'recvmsg', 'write', 'writev', 'sendto', 'sendmsg', 'accept', 'accept4', 'close', 'shutdown',
  'setsockopt', 'futex',
] as const;

const TRACEFS = '/sys/kernel/tracing/events/syscalls';
const ATTACH_TIMEOUT_MS = 15_000;

export interface SyscallTally {
  /** Calls by system call name. */
  calls: Record<string, number>;
  /** Every system call of the process in the window (perf: raw_syscalls:sys_enter; strace: its total). */
  total: number;
}

export interface SyscallCounter {
  tool: SyscallTool;
  /** Stops counting and returns what was counted since the counter started. */
  stop(): Promise<SyscallTally>;
  /** Ends the counting process, if it still runs, and removes its files (after a failure; again is harmless). */
  kill(): void;
}

let perfWorks: boolean | undefined;

/**
 * The tool asked for, or else perf where its syscall tracepoints work and strace otherwise; or why it
 * cannot count. perf is probed once.
 */
export function syscallTool(wanted?: SyscallTool): { tool: SyscallTool } | { skipped: string } {
  perfWorks ??= onPath('perf') && fs.existsSync(path.join(TRACEFS, 'sys_enter_recvfrom'))
    && spawnSync('perf', ['stat', '-x,', '-D', '-1', '-e', 'raw_syscalls:sys_enter,syscalls:sys_enter_recvfrom', '-o', '/dev/null', '--', 'true'],
      { stdio: 'ignore', timeout: 10_000 }).status === 0;
  const perf = 'perf\'s syscall tracepoints cannot be read here (Debian: apt-get install linux-perf; tracefs at /sys/kernel/tracing)';
  const strace = 'strace is not installed (Debian: apt-get install strace)';
  if (wanted === 'perf') return perfWorks ? { tool: 'perf' } : { skipped: perf };
  if (wanted === 'strace') return onPath('strace') ? { tool: 'strace' } : { skipped: strace };
  return perfWorks ? { tool: 'perf' } : onPath('strace') ? { tool: 'strace' } : { skipped: `${perf}, and ${strace}` };
}

/** What counted `counts`, or null when nothing was counted. Runs saved before perf was used counted with strace and do not say. */
export function countingTool(counts: readonly { tool?: SyscallTool }[]): SyscallTool | null {
  return counts.length === 0 ? null : counts[0].tool ?? 'strace';
}

/** Starts counting the system calls of process `pid` (every thread it has now; strace also follows new ones). */
export function startCounting(pid: number, tool: SyscallTool): Promise<SyscallCounter> {
  return tool === 'perf' ? startPerf(pid) : startStrace(pid);
}

/**
 * perf stat starts with its counters off (-D -1) and turns them on and off through its control FIFO,
 * answering "ack" each time: the window is exactly the one asked for, whatever attaching took.
 */
async function startPerf(pid: number): Promise<SyscallCounter> {
  let dir: string | undefined;
  let controlFd: number | undefined;
  let acks: net.Socket | undefined;
  let perf: ChildProcess | undefined;
  let cleaned = false;
  // Once, from stop(), kill() or a failed start: an open FIFO socket would keep the process alive.
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    if (perf && perf.exitCode === null && perf.signalCode === null) perf.kill('SIGKILL');
    acks?.destroy();
    if (controlFd !== undefined) fs.closeSync(controlFd);
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-perf-'));
    const control = path.join(dir, 'control');
    const ack = path.join(dir, 'ack');
    const output = path.join(dir, 'counts');
    execFileSync('mkfifo', [control, ack]);
    const names = COUNTED_SYSCALLS.filter((name) => fs.existsSync(path.join(TRACEFS, `sys_enter_${name}`)));
    const events = ['raw_syscalls:sys_enter', ...names.map((name) => `syscalls:sys_enter_${name}`)].join(',');
    // Both FIFOs opened read-write: the opens never block, and neither end sees EOF while perf starts.
    const fd = controlFd = fs.openSync(control, fs.constants.O_RDWR);
    const answers = acks = new net.Socket({ fd: fs.openSync(ack, fs.constants.O_RDWR | fs.constants.O_NONBLOCK), readable: true, writable: false });
    answers.unref(); // perf's answers are awaited with timers; the socket alone keeps nothing waiting.
    const child = perf = spawn('perf', ['stat', '-x,', '-D', '-1', '--control', `fifo:${control},${ack}`, '-e', events, '-p', String(pid), '-o', output],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? String(code))));
    let received = '';
    const waiting: (() => void)[] = [];
    answers.on('data', (chunk: Buffer) => {
      received += chunk.toString();
      while (received.includes('ack\n') && waiting.length > 0) {
        received = received.replace('ack\n', '');
        waiting.shift()!();
      }
    });
    const command = (word: string) => new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`perf stat did not answer "${word}" within ${ATTACH_TIMEOUT_MS} ms: ${stderr.trim()}`)),
        ATTACH_TIMEOUT_MS);
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`perf stat exited (${code}) before answering "${word}": ${stderr.trim()}`));
      });
      waiting.push(() => {
        clearTimeout(timer);
        resolve();
      });
      fs.writeSync(fd, `${word}\n`);
    });
    await command('enable');
    return {
      tool: 'perf',
      async stop() {
        try {
          await command('disable');
          child.kill('SIGINT'); // perf stat writes its counts, then ends by the same signal
          const how = await exited;
          if (how !== '0' && how !== 'SIGINT') throw new Error(`perf stat exited (${how}): ${stderr.trim()}`);
          return parsePerfCounts(fs.readFileSync(output, 'utf8'));
        } finally {
          cleanup();
        }
      },
      kill: cleanup,
    };
  } catch (err) {
    cleanup();
    throw err;
  }
}

/** `perf stat -x,` lines: "count,unit,event,…"; counts that were not taken read "<not counted>". */
function parsePerfCounts(text: string): SyscallTally {
  const calls: Record<string, number> = {};
  let total = 0;
  for (const line of text.split('\n')) {
    const [count, , event] = line.split(',');
    const n = Number(count);
    if (event === undefined || !Number.isFinite(n)) continue;
    if (event === 'raw_syscalls:sys_enter') total = n;
    else if (event.startsWith('syscalls:sys_enter_') && n > 0) calls[event.slice('syscalls:sys_enter_'.length)] = n;
  }
  return { calls, total };
}

async function startStrace(pid: number): Promise<SyscallCounter> {
  let dir: string | undefined;
  let strace: ChildProcess | undefined;
  let cleaned = false;
  // Once, from stop(), kill() or a failed start.
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    if (strace && strace.exitCode === null && strace.signalCode === null) strace.kill('SIGKILL');
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-strace-'));
    const output = path.join(dir, 'summary');
    const child = strace = spawn('strace', ['-c', '-f', '-o', output, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitForAttach(child);
    return {
      tool: 'strace',
      async stop() {
        try {
          await new Promise<void>((resolve) => {
            child.once('exit', () => resolve());
            child.kill('SIGINT'); // strace detaches and writes its summary
          });
          const calls = parseStraceSummary(fs.readFileSync(output, 'utf8'));
          return { calls, total: Object.values(calls).reduce((sum, n) => sum + n, 0) };
        } finally {
          cleanup();
        }
      },
      kill: cleanup,
    };
  } catch (err) {
    cleanup();
    throw err;
  }
}

/** strace says "Process N attached" on stderr once per thread; wait for the first, then let the rest follow. */
function waitForAttach(strace: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`strace did not attach: ${text.trim()}`)), ATTACH_TIMEOUT_MS);
    strace.stderr!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (/attached/.test(text)) {
        clearTimeout(timer);
        setTimeout(resolve, 200);
      }
    });
    strace.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`strace exited (${code}): ${text.trim()}`));
    });
  });
}

/** The calls column of `strace -c` by syscall name. */
function parseStraceSummary(text: string): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    // "% time  seconds  usecs/call  calls  [errors]  syscall"
    if (fields.length < 5 || !/^\d/.test(fields[0]) || fields[fields.length - 1] === 'total') continue;
    const name = fields[fields.length - 1];
    const n = Number(fields[3]);
    if (Number.isFinite(n)) calls[name] = (calls[name] ?? 0) + n;
  }
  return calls;
}
