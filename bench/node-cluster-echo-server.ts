/**
 * Node's way to serve on several cores: `cluster`, with W worker processes each running the same
 * `net` echo as bench/node-echo-server.ts (`socket.pipe(socket)`, TCP_NODELAY). Node's default
 * scheduling on Linux is round-robin: the primary accepts every connection and passes it to a
 * worker over IPC, so the primary's CPU time is part of the server's.
 *
 *   node dist/bench/node-cluster-echo-server.js [--workers 2] [--host 127.0.0.1] [--port 0]
 *
 * Prints "workers {"pids":[...]}" and "listening on HOST:PORT" once every worker listens;
 * SIGTERM/SIGINT stop it, and it prints "stats {...}" with the totals and each worker's own.
 */
import cluster from 'node:cluster';
import * as net from 'node:net';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

interface WorkerStats {
  accepted: number;
  bytesIn: number;
}

function worker(): void {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  let bytesGone = 0;
  const server = net.createServer({ noDelay: true }, (socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => socket.destroy()); // a reset peer is normal at the end of a run
    socket.on('close', () => {
      sockets.delete(socket);
      bytesGone += socket.bytesRead;
    });
    socket.pipe(socket);
  });
  server.listen(Number(option('--port', '0')), option('--host', '127.0.0.1'), () => process.send!({ type: 'listening', address: server.address() }));
  process.on('message', (message: { type: string }) => {
    if (message.type !== 'stats') return;
    let bytesIn = bytesGone;
    for (const socket of sockets) bytesIn += socket.bytesRead;
    process.send!({ type: 'stats', stats: { accepted, bytesIn } satisfies WorkerStats });
  });
  // The primary decides when to stop.
  process.on('SIGTERM', () => undefined);
  process.on('SIGINT', () => undefined);
}

function primary(): void {
  const count = Number(option('--workers', '2'));
  // Port 0 in a cluster: the primary binds once and every worker shares that handle.
  const workers = Array.from({ length: count }, () => cluster.fork());
  let listening = 0;
  for (const w of workers) {
    w.on('message', (message: { type: string; address?: net.AddressInfo }) => {
      if (message.type !== 'listening' || ++listening < count) return;
      const address = message.address!;
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      process.stdout.write(`workers ${JSON.stringify({ pids: workers.map((x) => x.process.pid) })}\n`);
      process.stdout.write(`listening on ${shown}:${address.port}\n`);
    });
  }
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const stats = await Promise.all(workers.map((w) => new Promise<WorkerStats>((resolve) => {
      w.on('message', (message: { type: string; stats?: WorkerStats }) => {
        if (message.type === 'stats') resolve(message.stats!);
      });
      w.send({ type: 'stats' });
    })));
    const total = stats.reduce((sum, s) => ({ accepted: sum.accepted + s.accepted, bytesIn: sum.bytesIn + s.bytesIn }), { accepted: 0, bytesIn: 0 });
    process.stdout.write(`stats ${JSON.stringify({ ...total, threads: stats.map((s, i) => ({ thread: i + 1, pid: workers[i].process.pid, ...s })) })}\n`);
    for (const w of workers) w.kill('SIGKILL');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

if (cluster.isPrimary) primary();
else worker();
