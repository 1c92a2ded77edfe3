/**
 * What ConnectionOptions.shortReads saves per message: an echo server of Listener + Connection on
 * edge-triggered epoll, with and without it, under the benchmark's C load generator (bench/loadgen.c),
 * the two interleaved round by round so that the machine's noise hits both alike.
 *
 *   node dist/tools/lab/short-read-cost.js [--rounds 5] [--connections 1,100] [--duration-ms 2000]
 *
 * Per run: the server's CPU time per message (from /proc, by the load generator) and, in a separate
 * counting run (a wrapper on recv would tax the timed runs), recv calls per message. Prints the medians
 * and the ratio on/off as a table.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';
import { binding } from '../../lib/native';
import { Reactor } from '../../lib/reactor';
import { EpollSelector } from '../../lib/selectors/epoll';
import type { IoHandler } from '../../lib/reactor';
import { Listener } from '../../lib/stream/listener';
import { programPath, runJsonLines } from '../../bench/programs';

interface LoadResult {
  messages: number;
  serverCpuNsPerMessage: number;
  messagesPerSec: number;
}

/** The server: `short-read-cost.js serve <0|1 shortReads> <0|1 count recv>`; prints its port, then (counting) recv totals. */
function serve(shortReads: boolean, count: boolean): void {
  let recvs = 0;
  if (count) {
    const recv = binding.recv;
    binding.recv = (...args) => {
      recvs++;
      return recv(...args);
    };
  }
  const reactor = new Reactor(new EpollSelector<IoHandler>({ edgeTriggered: true }));
  const listener = new Listener(reactor, { endpoint: { host: '127.0.0.1', port: 0 }, connection: { shortReads } }, (conn) => {
    conn.onData = function (data) {
      this.write(data);
    };
  });
  const address = listener.listen();
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
  if (count) {
    const report = (): void => {
      process.stdout.write(`${JSON.stringify({ recvs })}\n`);
      reactor.setTimeout(report, 100);
    };
    report();
  }
  reactor.run();
}

interface Server {
  child: ChildProcess;
  port: number;
  /** The last recv total it printed (counting servers). */
  recvs: () => number;
}

function startServer(shortReads: boolean, count: boolean): Promise<Server> {
  const child = spawn(process.execPath, [__filename, 'serve', shortReads ? '1' : '0', count ? '1' : '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let recvs = 0;
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the server exited with ${code}`)));
    readline.createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const message = JSON.parse(line) as { port?: number; recvs?: number };
      if (message.port !== undefined) resolve({ child, port: message.port, recvs: () => recvs });
      if (message.recvs !== undefined) recvs = message.recvs;
    });
  });
}

async function stop(server: Server): Promise<void> {
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGKILL');
  await exited;
}

async function load(server: Server, connections: number, durationMs: number): Promise<LoadResult> {
  const [result] = await runJsonLines<LoadResult>(programPath('bench-loadgen'), [
    '--port', String(server.port), '--connections', String(connections), '--depth', '1', '--size', '64',
    '--warmup-ms', '300', '--duration-ms', String(durationMs), '--server-pid', String(server.child.pid),
  ]);
  return result;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(rounds: number, connectionCounts: number[], durationMs: number): Promise<void> {
  const rows: string[][] = [['connections', 'shortReads', 'recv/msg', 'server CPU ns/msg (median)', 'msgs/s (median)', 'CPU on/off']];
  for (const connections of connectionCounts) {
    const cpu: Record<'off' | 'on', number[]> = { off: [], on: [] };
    const rate: Record<'off' | 'on', number[]> = { off: [], on: [] };
    const perMessage: Record<'off' | 'on', number> = { off: 0, on: 0 };
    for (const [mode, shortReads] of [['off', false], ['on', true]] as const) {
      // Counting run: recv calls over the load generator's whole run, per message it made.
      const server = await startServer(shortReads, true);
      try {
        const result = await load(server, connections, 1000);
        await sleep(250); // One more report after the load stopped.
        perMessage[mode] = server.recvs() / (result as unknown as { messagesTotal: number }).messagesTotal;
      } finally {
        await stop(server);
      }
    }
    for (let round = 1; round <= rounds; round++) {
      // Alternate which goes first, so neither always has the warmer machine.
      const order = round % 2 ? (['off', 'on'] as const) : (['on', 'off'] as const);
      for (const mode of order) {
        process.stderr.write(`C=${connections} round ${round}/${rounds} shortReads ${mode}\n`);
        const server = await startServer(mode === 'on', false);
        try {
          const result = await load(server, connections, durationMs);
          cpu[mode].push(result.serverCpuNsPerMessage);
          rate[mode].push(result.messagesPerSec);
        } finally {
          await stop(server);
        }
      }
    }
    const ratio = median(cpu.on) / median(cpu.off);
    for (const mode of ['off', 'on'] as const) {
      rows.push([String(connections), mode, perMessage[mode].toFixed(2), median(cpu[mode]).toFixed(0),
        median(rate[mode]).toFixed(0), mode === 'on' ? ratio.toFixed(3) : '']);
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padStart(widths[i])).join('  ')}\n`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

if (process.argv[2] === 'serve') {
  serve(process.argv[3] === '1', process.argv[4] === '1');
} else {
  measure(Number(option('--rounds', '5')), option('--connections', '1,100').split(',').map(Number), Number(option('--duration-ms', '2000')))
    .catch((err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    });
}
