/**
 * The server side of `bench/costs.ts`, in a process of its own so that its memory can be read
 * alone: one of
 *
 *   node dist/bench/cost-probe.js reactor                  an EchoServer on an attached epoll reactor
 *   node dist/bench/cost-probe.js threading MIN MAX IDLE_MS QUEUE   a ThreadingServer of EchoHandler (cost-handler.ts)
 *   node dist/bench/cost-probe.js startup COUNT            starts COUNT pool workers one after another
 *
 * The servers print "port N" (and "ready N" as pool workers load their handler); startup prints
 * one JSON line of milliseconds per worker, from new Worker() to its handler loaded ("pool"), and
 * for an empty worker that only says hello ("empty": Node's own part of it).
 */
import { performance } from 'node:perf_hooks';
import * as path from 'node:path';
import { isMainThread, Worker } from 'node:worker_threads';
import { EchoServer } from '../lib/echo/server';
import { ThreadingServer } from '../lib/socketserver';
import { EchoHandler } from './cost-handler';
import { OwnershipSlot } from '../lib/socketserver/ownership';
import type { WorkerData } from '../lib/socketserver/worker-protocol';

/** ms from new Worker() to its first message, for an empty worker: Node's own share of a pool worker's start-up. */
async function emptyStartup(count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const worker = new Worker('require("node:worker_threads").parentPort.postMessage(0)', { eval: true });
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    times.push(performance.now() - started);
    await worker.terminate();
  }
  return times;
}

async function startup(count: number): Promise<void> {
  const empty = await emptyStartup(count);
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const slot = new OwnershipSlot();
    const data: WorkerData = {
      module: EchoHandler.module, exportName: 'EchoHandler', slot: slot.buffer, serverAddress: { family: 'IPv4', address: '127.0.0.1', port: 0 },
    };
    const started = performance.now();
    const worker = new Worker(path.join(__dirname, '..', 'lib', 'socketserver', 'handler-worker.js'), { workerData: data });
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    times.push(performance.now() - started);
    await worker.terminate();
  }
  process.stdout.write(`${JSON.stringify({ pool: times, empty })}\n`);
}

function main(argv: string[]): void {
  const [mode, ...args] = argv;
  if (mode === 'reactor') {
    const server = new EchoServer({ mechanism: 'epoll', port: 0 });
    process.stdout.write(`port ${server.listen().port}\n`);
    server.reactor.attach();
    process.on('SIGTERM', () => {
      server.close();
      process.exit(0);
    });
  } else if (mode === 'threading') {
    const [min, max, idle, queue] = args.map(Number);
    const server = new ThreadingServer({ host: '127.0.0.1', port: 0 }, EchoHandler, { minThreads: min, maxThreads: max, idleTimeoutMs: idle, queueSize: queue });
    let ready = 0;
    server.on('workerReady', () => process.stdout.write(`ready ${++ready}\n`));
    process.stdout.write(`port ${server.serverAddress.port}\n`);
    void server.serveForever();
    process.on('SIGTERM', () => {
      void server.shutdown().then(() => {
        server.serverClose();
        process.exit(0);
      });
    });
  } else if (mode === 'startup') {
    void startup(Number(args[0]));
  } else {
    throw new Error(`cost-probe: unknown mode ${mode}`);
  }
}

if (require.main === module && isMainThread) main(process.argv.slice(2));
