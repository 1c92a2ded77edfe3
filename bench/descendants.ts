/**
 * The processes a run started, directly or through its children (servers, load generators, strace), read
 * from /proc. A Ctrl-C from a terminal reaches them all, but a part may start one more after the signal, and
 * `kill -INT` reaches this process alone: an interrupted run stops them itself rather than leave them behind.
 */
import * as fs from 'node:fs';

/** Descendants of `pid`, parents before their children; [] where there is no /proc. */
export function descendants(pid: number = process.pid): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const children = new Map<number, number[]>();
  for (const entry of entries) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // it ended while we looked
    }
    // The command name (field 2) is in parentheses and may hold spaces: the parent id follows the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
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
