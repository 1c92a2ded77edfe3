/** Shared test helpers: descriptor accounting and small socket fixtures on real loopback sockets. */
import * as fs from 'node:fs';

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
