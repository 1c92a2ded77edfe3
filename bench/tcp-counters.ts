/**
 * The kernel's TCP counters that explain a latency spike on loopback, read from /proc/net/snmp and
 * /proc/net/netstat (what `nstat` reads): retransmitted segments, retransmission timeouts, tail-loss
 * probes, and listen-queue overflows and drops. They count the whole machine (every process's
 * connections), so a delta says what the kernel did while a phase ran, not whose packets it was.
 */
import * as fs from 'node:fs';

export interface TcpCounters {
  retransSegs: number;
  /** RTOs: a segment waited a whole retransmission timeout (at least 200 ms) for its ACK. */
  timeouts: number;
  lossProbes: number;
  listenOverflows: number;
  listenDrops: number;
}

/** "Prefix: name name …" followed by "Prefix: value value …", as both files lay them out. */
function table(file: string, prefix: string): Map<string, number> {
  const values = new Map<string, number>();
  let lines: string[];
  try {
    lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.startsWith(`${prefix}:`));
  } catch {
    return values; // no /proc: nothing to say
  }
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = lines[i].split(/\s+/).slice(1);
    const numbers = lines[i + 1].split(/\s+/).slice(1).map(Number);
    names.forEach((name, j) => values.set(name, numbers[j]));
  }
  return values;
}

/** The counters now, or null where /proc/net does not have them (not Linux). */
export function readTcpCounters(): TcpCounters | null {
  const tcp = table('/proc/net/snmp', 'Tcp');
  const ext = table('/proc/net/netstat', 'TcpExt');
  if (!tcp.has('RetransSegs') || !ext.has('TCPTimeouts')) return null;
  return {
    retransSegs: tcp.get('RetransSegs')!, timeouts: ext.get('TCPTimeouts')!, lossProbes: ext.get('TCPLossProbes') ?? 0,
    listenOverflows: ext.get('ListenOverflows') ?? 0, listenDrops: ext.get('ListenDrops') ?? 0,
  };
}

/** later − earlier, field by field (null if either is missing). */
export function tcpDelta(earlier: TcpCounters | null, later: TcpCounters | null): TcpCounters | null {
  if (!earlier || !later) return null;
  return {
    retransSegs: later.retransSegs - earlier.retransSegs, timeouts: later.timeouts - earlier.timeouts,
    lossProbes: later.lossProbes - earlier.lossProbes, listenOverflows: later.listenOverflows - earlier.listenOverflows,
    listenDrops: later.listenDrops - earlier.listenDrops,
  };
}
