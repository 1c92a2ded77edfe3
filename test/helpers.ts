/** Shared test helpers: descriptor accounting, small socket fixtures on real loopback sockets, child Node processes. */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The descriptors this process holds that iomux could have created (sockets, epoll, eventfd). */
export function openKernelObjects(): Map<number, string> {
  const result = new Map<number, string>();
  for (const name of fs.readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${name}`);
    } catch {
      continue; // The directory's own descriptor, gone by now.
    }
    if (/^socket:|^anon_inode:\[(eventpoll|eventfd)\]/.test(target)) result.set(Number(name), target);
  }
  return result;
}

/** Descriptors present now that were not in `before`. */
export function leakedSince(before: Map<number, string>): string[] {
  const leaked: string[] = [];
  for (const [fd, target] of openKernelObjects()) {
    if (before.get(fd) !== target) leaked.push(`${fd} -> ${target}`);
  }
  return leaked;
}

/** The soft RLIMIT_NOFILE, read from /proc (Node has no getrlimit). */
export function descriptorLimit(): number {
  const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.split(/\s+/)[3];
  return soft === 'unlimited' || soft === undefined ? Infinity : Number(soft);
}

const packageRoot = path.resolve(__dirname, '..', '..');

/** Runs a script in a child Node (from the package root); resolves with how it ended. */
export function runNode(script: string, options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; args?: string[] } = {}):
  Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...(options.args ?? []), '-e', script],
      { timeout: options.timeoutMs ?? 15000, cwd: packageRoot, env: { ...process.env, ...options.env } },
      (err, stdout, stderr) => {
        const failure = err as (Error & { code?: number; signal?: string }) | null;
        resolve({ code: failure ? (typeof failure.code === 'number' ? failure.code : null) : 0, signal: failure?.signal ?? null, stdout, stderr });
      });
  });
}

export interface StartedChild {
  child: ChildProcess;
  /** The match of the line the child was waited for (group 1 is usually the port). */
  match: RegExpExecArray;
  /** Resolves with the exit code (null if a signal ended it) once its output is all read ('close'). */
  exited: Promise<number | null>;
  /** Everything it has printed on stdout so far. */
  output(): string;
}

/**
 * Spawns `file args` and resolves once its stdout matches `ready` (e.g. /listening on [^:]+:(\d+)/);
 * rejects if it exits first. stderr is inherited, so a failing child explains itself.
 */
export function startChild(file: string, args: string[], ready: RegExp): Promise<StartedChild> {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = ready.exec(out);
      if (match) resolve({ child, match, exited, output: () => out });
    });
    child.once('close', (code, signal) => reject(new Error(`${file} ${args.join(' ')} exited (${code ?? signal}) before printing ${ready}: ${out}`)));
  });
}
