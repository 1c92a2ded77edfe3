/**
 * What interest churn costs (the seed's strict read/write separation, priced): the echo servers
 * that differ only in how they tell epoll what they want — level-triggered with direct writes (no
 * change in steady state), level-triggered queued (write interest on and off for every reply; also
 * without batching, as it was), and edge-triggered with IN|OUT registered once, direct and queued —
 * at C = 100 and 1000 with one message in flight, and the queued ones at D = 8. Reports CPU per
 * message and, from strace -c, epoll_ctl and recv calls per message.
 */
import { EchoOptions, EchoResult, EchoServerName, runEcho, echoCellCount } from './echo';
import { Spread } from './stats';
import type { SyscallTool } from './syscalls';

export interface InterestOptions {
  connections: number[];
  /** The depth at which batching could apply. */
  deepDepth: number;
  repeat: number;
  warmupMs: number;
  durationMs: number;
  pin: boolean;
  syscalls: boolean;
  syscallDurationMs: number;
  syscallTool?: SyscallTool;
}

export interface InterestRow {
  server: EchoServerName;
  connections: number;
  depth: number;
  cpuNsPerMessage: Spread;
  messagesPerSec: Spread;
  loadgenCpuShare: number;
  eventsPerMessage: number | null;
  /** From strace -c at C = 100 (null when not counted). */
  epollCtlPerMessage: number | null;
  recvPerMessage: number | null;
  syscallsPerMessage: number | null;
}

export interface InterestResult {
  options: InterestOptions;
  notes: string[];
  rows: InterestRow[];
  syscallsSkipped: string | null;
}

const SHALLOW: EchoServerName[] = ['iomux-epoll', 'iomux-epoll-et', 'iomux-epoll-queued', 'iomux-epoll-et-queued'];
const DEEP: EchoServerName[] = ['iomux-epoll-queued', 'iomux-epoll-queued-unbatched', 'iomux-epoll-et-queued'];
/** The three runs, as echo options: D = 1 at every C; unbatched at D = 1; the queued ones deep. The smallest C is where system calls are counted and the comparisons at depth are made. */
function plans(o: InterestOptions): EchoOptions[] {
  const c = Math.min(...o.connections);
  const base = {
    sizes: [64], repeat: o.repeat, warmupMs: o.warmupMs, durationMs: o.durationMs, pin: o.pin,
    syscalls: o.syscalls, syscallConnections: c, syscallSize: 64, syscallDurationMs: o.syscallDurationMs, syscallTool: o.syscallTool,
  };
  return [
    { ...base, servers: SHALLOW, connections: o.connections, depth: 1 },
    { ...base, servers: ['iomux-epoll-queued-unbatched'], connections: [c], depth: 1 },
    { ...base, servers: DEEP, connections: [c], depth: o.deepDepth },
  ];
}

export function interestCellCount(o: InterestOptions): number {
  return plans(o).reduce((sum, plan) => sum + echoCellCount(plan), 0);
}

export async function runInterest(o: InterestOptions, onCell: (label: string) => void = () => {}): Promise<InterestResult> {
  const rows: InterestRow[] = [];
  let syscallsSkipped: string | null = null;
  for (const plan of plans(o)) {
    const result: EchoResult = await runEcho(plan, (label) => onCell(`D=${plan.depth} ${label}`));
    syscallsSkipped ??= result.syscallsSkipped;
    for (const row of result.rows) {
      const counted = row.connections === plan.syscallConnections
        ? result.syscalls.find((s) => s.server === row.server) : undefined;
      rows.push({
        server: row.server, connections: row.connections, depth: plan.depth,
        cpuNsPerMessage: row.serverCpuNsPerMessage, messagesPerSec: row.messagesPerSec,
        loadgenCpuShare: row.loadgenCpuShare, eventsPerMessage: row.eventsPerMessage,
        epollCtlPerMessage: counted ? counted.perMessage.epoll_ctl ?? 0 : null,
        recvPerMessage: counted ? counted.perMessage.recvfrom ?? 0 : null,
        syscallsPerMessage: counted ? counted.totalPerMessage : null,
      });
    }
  }
  return {
    options: o,
    rows,
    syscallsSkipped,
    notes: [
      'epoll only: level-triggered (direct: send at once, queue what would block; queued: every reply waits for a writable ' +
        'event, write interest on and off per reply, applied just before the next wait unless "unbatched") and ' +
        'edge-triggered (IN|OUT registered once per connection, never changed; reads drain until EAGAIN)',
      `system calls per message: counted (perf, or strace) on a separate run at C = ${Math.min(...o.connections)}; what remains of epoll_ctl in ` +
        'the edge-triggered servers is one ADD and one DEL per connection, spread over its messages',
      `D = ${o.deepDepth}: each connection keeps ${o.deepDepth} messages in flight (the load generator sends the next one as ` +
        'soon as a reply arrives)',
    ],
  };
}

/** The row of `server` at `connections` and `depth`. */
export function interestRow(r: InterestResult, server: EchoServerName, connections: number, depth = 1): InterestRow | undefined {
  return r.rows.find((row) => row.server === server && row.connections === connections && row.depth === depth);
}
