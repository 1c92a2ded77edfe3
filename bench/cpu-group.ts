/**
 * One CPU scheduling group for the servers of a benchmark run, where the machine lets us make one.
 *
 * Linux's scheduler shares a busy CPU between groups before tasks: with autogroups (the default on
 * desktop distributions, on here), every session (setsid) is a group with a full share. vsftpd's
 * session processes each call setsid(), so 1,000 of them get 1,000 shares of a contended core
 * against one for a single-process server. Each server is started in a session of its own
 * (bench/ftp-servers.ts), which makes a server with one busy process equal to one vsftpd session;
 * a CPU cgroup goes further: tasks in a cgroup other than the root are not autogrouped, so every
 * process of every server, however many, competes as the one group. Making one needs root and a
 * cgroup file system with the cpu controller (v1's /sys/fs/cgroup/cpu, or v2 with cpu enabled for
 * the root's children); elsewhere `serverGroup()` says why not and the sessions alone remain.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { undoOnExit } from './cleanup';

export interface CpuGroup {
  /** Moves a process into the group; the children it forks later are born in it. */
  join(pid: number): void;
  /** Moves what is left back to the parent and removes the group. */
  remove(): void;
  /** Where it is, for the report. */
  readonly description: string;
}

/** Where a CPU cgroup can be made here, or why not. */
function cgroupParent(): { dir: string } | { reason: string } {
  if (process.platform !== 'linux') return { reason: 'CPU cgroups are Linux-only' };
  if (process.getuid?.() !== 0) return { reason: 'making a CPU cgroup needs root' };
  const v1 = '/sys/fs/cgroup/cpu';
  if (fs.existsSync(path.join(v1, 'cpu.shares'))) return { dir: v1 };
  const v2 = '/sys/fs/cgroup';
  try {
    if (fs.readFileSync(path.join(v2, 'cgroup.subtree_control'), 'utf8').split(/\s+/).includes('cpu')) return { dir: v2 };
  } catch {
    // Not cgroup v2 at the usual place.
  }
  return { reason: 'no cgroup file system with the cpu controller at /sys/fs/cgroup' };
}

/**
 * The groups of runs that ended without removing theirs: a run that is interrupted stops its servers
 * but cannot wait for them to be reaped, and a group is busy until then. Empty by now, they go.
 */
function removeStale(parent: string): void {
  for (const name of fs.readdirSync(parent)) {
    const owner = /^iomux-bench-(\d+)$/.exec(name)?.[1];
    if (owner === undefined || fs.existsSync(`/proc/${owner}`)) continue;
    try {
      fs.rmdirSync(path.join(parent, name));
    } catch {
      // Still busy: the next run tries again.
    }
  }
}

/** A fresh CPU cgroup for the servers, or the reason there is none. */
export function serverGroup(): CpuGroup | { reason: string } {
  const parent = cgroupParent();
  if ('reason' in parent) return parent;
  removeStale(parent.dir);
  const dir = path.join(parent.dir, `iomux-bench-${process.pid}`);
  try {
    fs.mkdirSync(dir);
  } catch (err) {
    return { reason: `cannot make ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  const remove = (): void => {
    forget();
    for (const pid of fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
      try {
        fs.writeFileSync(path.join(parent.dir, 'cgroup.procs'), `${pid}\n`);
      } catch {
        // It exited meanwhile.
      }
    }
    fs.rmdirSync(dir);
  };
  const forget = undoOnExit(remove);
  return { description: dir, join: (pid) => fs.writeFileSync(path.join(dir, 'cgroup.procs'), `${pid}\n`), remove };
}
