/** What every result file records about the machine it was measured on. */
import * as fs from 'node:fs';
import * as os from 'node:os';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  kernel: string;
  platform: string;
  arch: string;
  node: string;
  memoryGiB: number;
  /** 1/5/15-minute load averages when the run started: other work on the machine skews results. */
  loadAverage: number[];
  /** The soft and hard RLIMIT_NOFILE of this process (Linux; null elsewhere). */
  descriptorLimit: { soft: number; hard: number } | null;
  taskset: boolean;
  strace: boolean;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    kernel: `${os.type()} ${os.release()}`,
    platform: process.platform,
    arch: process.arch,
    node: process.version,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
    descriptorLimit: descriptorLimits(),
    taskset: onPath('taskset'),
    strace: onPath('strace'),
  };
}

/** One line for chart subtitles and CSV headers. */
export function machineSummary(m: MachineInfo): string {
  return `${m.cpuModel}, ${m.cores} cores, ${m.kernel}, Node ${m.node}`;
}

/** This process's RLIMIT_NOFILE from /proc (Node has no getrlimit); null where there is no /proc. */
export function descriptorLimits(): { soft: number; hard: number } | null {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const [soft, hard] = (line ?? '').trim().split(/\s+/).slice(3, 5).map((v) => (v === 'unlimited' ? Infinity : Number(v)));
    return soft === undefined || Number.isNaN(soft) ? null : { soft, hard };
  } catch {
    return null;
  }
}

/** Descriptors this process may still open under its soft limit, less a margin for Node's own. */
export function freeDescriptors(): number {
  const limits = descriptorLimits();
  if (!limits || limits.soft === Infinity) return Infinity; // No /proc: socket() will say EMFILE if it must.
  return limits.soft - fs.readdirSync('/proc/self/fd').length - 64;
}

/** Whether an executable is on PATH (no shell, no spawn). */
export function onPath(name: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    try {
      fs.accessSync(`${dir}/${name}`, fs.constants.X_OK);
      return true;
    } catch {
      // Not in this directory.
    }
  }
  return false;
}
