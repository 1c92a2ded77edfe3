/**
 * The processes a run started, directly or through its children (servers, load generators, strace), read
 * from /proc. A Ctrl-C from a terminal reaches them all, but a part may start one more after the signal, and
 * `kill -INT` reaches this process alone: an interrupted run stops them itself rather than leave them behind.
 * The FTP benchmark walks a server's tree with the same functions (bench/ftp-servers.ts: its CPU time, memory).
 */
import * as fs from 'node:fs';

/** The fields of /proc/PID/stat after the command name (field 3 is index 0), or null when it has gone. */
export function statFields(pid: number): string[] | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: the rest follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** The pids of `pid`'s children (of every thread: /proc/PID/task/TID/children); [] once it has gone, or where there is no /proc. */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return children;
  }
  for (const task of tasks) {
    try {
      for (const child of fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/)) {
        if (child !== '') children.push(Number(child));
      }
    } catch {
      // The thread ended.
    }
  }
  return children;
}

/** Descendants of `pid`, parents before their children; [] where there is no /proc. */
export function descendants(pid: number = process.pid): number[] {
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of childrenOf(queue.shift()!)) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** SIGTERM to every descendant (each server here stops on it); one that is gone already is no error. */
export function stopDescendants(): void {
  for (const pid of descendants()) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // ended meanwhile
    }
  }
}
