/**
 * Multi-reactor serving: `iomux serve --threads N` (a child process, as users run it) and the
 * ThreadedEchoServer API (in this process, so descriptors can be counted), in both balance modes,
 * against real loopback clients that check every byte.
 */
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { binding } from '../lib/native';
import { ConnectionBalancer } from '../lib/echo/connection-balancer';
import { aggregate, Balance, herdWarning, ThreadedEchoServer, ThreadStats } from '../lib/echo/threaded-server';
import { concurrentEcho } from './echo-clients';
import { descriptorLimit, leakedSince, openKernelObjects } from './helpers';

const cli = path.resolve(__dirname, '..', 'tools', 'cli.js');
const hasEpoll = binding.epoll_wait !== undefined;
const hasReusePort = binding.platform === 'linux';

interface Served {
  child: ChildProcess;
  port: number;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts `iomux serve` and resolves once it prints "listening on". */
function serve(args: string[]): Promise<Served> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`iomux serve did not start: ${out}`));
    }, 15000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (?:\[[^\]]+\]|[^\s:]+):(\d+)\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), output: () => out, exited });
      }
    });
    child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`iomux serve exited (${code}) before listening: ${out}`));
    });
  });
}

interface FinalStats {
  accepted: number;
  connections: number;
  bytesIn: number;
  bytesOut: number;
  threads: ThreadStats[];
}

/** SIGTERM; resolves with the exit code and the one stats line. */
async function terminate(served: Served): Promise<{ code: number | null; stats: FinalStats }> {
  served.child.kill('SIGTERM');
  const code = await served.exited;
  const lines = served.output().match(/^stats .*$/gm) ?? [];
  assert.equal(lines.length, 1, `one stats line: ${served.output()}`);
  return { code, stats: JSON.parse(lines[0].slice(6)) as FinalStats };
}

function balances(): Balance[] {
  const modes: Balance[] = ['exclusive'];
  if (hasReusePort) modes.unshift('reuseport');
  return modes;
}

describe('multi-reactor serving: iomux serve --threads', function () {
  this.timeout(120000);

  for (const balance of balances()) {
    it(`--threads 2 --balance ${balance}: 1000 clients at once are echoed byte-exact, and both threads serve`, async function () {
      // This process and the server each hold 1000 connections.
      if (descriptorLimit() < 2200) throw new Error(`needs a descriptor limit of 2200 (ulimit -n); it is ${descriptorLimit()}`);
      const served = await serve(['--threads', '2', '--balance', balance, '--port', '0', '--backlog', '4096']);
      const info = JSON.parse(/^threads (.*)$/m.exec(served.output())![1]) as { count: number; balance: string; tids: (number | null)[] };
      assert.equal(info.count, 2);
      assert.equal(info.balance, balance);
      assert.equal(new Set(info.tids).size, 2, 'two kernel threads');
      const total = await concurrentEcho({ port: served.port }, 1000, 2048, 1515);
      const { code, stats } = await terminate(served);
      assert.equal(code, 0);
      assert.equal(stats.accepted, 1000);
      assert.equal(stats.connections, 0);
      assert.equal(stats.bytesIn, total);
      assert.equal(stats.bytesOut, total);
      assert.equal(stats.threads.length, 2);
      for (const t of stats.threads) {
        assert.ok(t.accepted > 0 && t.bytesIn > 0, `thread ${t.thread} served nothing: ${JSON.stringify(stats.threads)}`);
      }
      assert.equal(stats.threads.reduce((sum, t) => sum + t.accepted, 0), 1000, 'the totals are the sums');
      assert.equal(stats.threads.reduce((sum, t) => sum + t.bytesIn, 0), total);
    });
  }

  it('SIGTERM drains every thread: what each one read goes back before its connections close, and the totals print once', async () => {
    const balance = balances()[0];
    const served = await serve(['--threads', '2', '--balance', balance, '--port', '0']);
    const clients = 24;
    const payload = Buffer.alloc(200 * 1024, 7);
    const sockets = await Promise.all(Array.from({ length: clients }, () => new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect(served.port, '127.0.0.1', () => resolve(socket));
      socket.once('error', reject);
    })));
    // Each client sends, sees its first echoed byte (the server has read some), then stops reading:
    // replies queue up in every thread when SIGTERM arrives.
    const received = sockets.map(() => [] as Buffer[]);
    await Promise.all(sockets.map((socket, i) => new Promise<void>((resolve) => {
      socket.write(payload);
      socket.once('data', (d: Buffer) => {
        received[i].push(d);
        socket.pause();
        resolve();
      });
    })));
    const ended = sockets.map((socket) => new Promise<void>((resolve) => socket.on('end', () => {
      socket.end();
      resolve();
    })));
    const stopped = terminate(served);
    sockets.forEach((socket, i) => {
      socket.on('data', (d: Buffer) => received[i].push(d));
      socket.resume();
    });
    await Promise.all(ended);
    const { code, stats } = await stopped;
    assert.equal(code, 0);
    const bytes = received.reduce((sum, chunks) => sum + Buffer.concat(chunks).length, 0);
    assert.equal(bytes, stats.bytesIn, 'everything read was sent back before the close');
    assert.equal(stats.bytesOut, stats.bytesIn);
    assert.equal(stats.connections, 0);
    for (const t of stats.threads) assert.ok(t.accepted > 0, `thread ${t.thread} had connections to drain: ${JSON.stringify(stats.threads)}`);
    sockets.forEach((s) => s.destroy());
  });

  it('poll with --balance exclusive: serves, with a warning that names the thundering herd and the lab scenario', async () => {
    const served = await serve(['--threads', '2', '--balance', 'exclusive', '--mechanism', 'poll', '--port', '0', '--quiet']);
    const total = await concurrentEcho({ port: served.port }, 40, 4096, 99);
    const { code, stats } = await terminate(served);
    assert.equal(code, 0);
    assert.equal(stats.bytesIn, total);
    assert.match(served.output(), /warning: poll has no exclusive registration.*thundering herd/s);
    assert.match(served.output(), /iomux trace thundering-herd/);
    assert.match(served.output(), /readiness-lab\.md/);
  });

  it('--threads with --mode attached, and --balance reuseport with --unix, are clear errors', async () => {
    const run = (args: string[]) => new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, [cli, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      child.on('exit', (code) => resolve({ code, out }));
    });
    const attached = await run(['--threads', '2', '--mode', 'attached']);
    assert.notEqual(attached.code, 0);
    assert.match(attached.out, /not with --mode attached/);
    const unix = await run(['--threads', '2', '--balance', 'reuseport', '--unix', path.join(os.tmpdir(), `iomux-${process.pid}.sock`)]);
    assert.notEqual(unix.code, 0);
    assert.match(unix.out, /Unix socket path cannot be bound twice/);
    const threads = await run(['--threads', '0']);
    assert.notEqual(threads.code, 0);
    assert.match(threads.out, /threads must be an integer from 1/);
  });
});

describe('multi-reactor serving: the ThreadedEchoServer API', function () {
  this.timeout(60000);
  let before: Map<number, string>;
  beforeEach(() => {
    before = openKernelObjects();
  });

  for (const balance of balances()) {
    const mechanism = hasEpoll ? 'epoll' : 'poll';
    it(`${balance}: live per-thread stats, the totals, a graceful shutdown, and no descriptor left behind`, async () => {
      const server = new ThreadedEchoServer({ threads: 2, balance, mechanism, port: 0 });
      const address = await server.listen();
      assert.equal(server.threadIds.length, 2);
      // Hold connections open so that the live stats see them.
      const held = await Promise.all(Array.from({ length: 30 }, () => new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect(address.port, '127.0.0.1');
        socket.once('error', reject);
        socket.write('x');
        socket.once('data', () => resolve(socket));
      })));
      const live = await server.stats();
      assert.equal(live.connections, 30);
      assert.equal(live.threads.length, 2);
      assert.equal(live.threads[0].connections + live.threads[1].connections, 30);
      assert.equal(live.bytesIn, 30);
      const total = await concurrentEcho({ port: address.port }, 100, 8192, 7);
      const closedAll = Promise.all(held.map((s) => new Promise((resolve) => s.once('close', resolve))));
      for (const socket of held) socket.end();
      await closedAll;
      const final = await server.shutdown(1000);
      assert.equal(final.accepted, 130);
      assert.equal(final.bytesIn, total + 30);
      assert.equal(final.bytesOut, final.bytesIn);
      assert.equal(final.connections, 0);
      assert.deepEqual(server.failures, []);
      assert.deepEqual(leakedSince(before), [], 'every listener, connection and waker is closed');
      assert.equal(await server.shutdown(), final, 'shutdown() is idempotent');
    });
  }

  if (hasEpoll) {
    it('exclusive with hand-off: 200 connections arriving at once are split evenly (within two), whatever the kernel wakes', async () => {
      const server = new ThreadedEchoServer({ threads: 2, balance: 'exclusive', mechanism: 'epoll', port: 0 });
      const address = await server.listen();
      const held = await Promise.all(Array.from({ length: 200 }, () => new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect(address.port, '127.0.0.1');
        socket.once('error', reject);
        socket.write('x');
        socket.once('data', () => resolve(socket));
      })));
      const live = await server.stats();
      // Each accepted connection goes to the thread with fewer open ones. Two threads deciding at the
      // same instant may both read the same counts, so the counts can differ by two, never more.
      assert.ok(Math.abs(live.threads[0].connections - live.threads[1].connections) <= 2, JSON.stringify(live.threads));
      const closedAll = Promise.all(held.map((s) => new Promise((resolve) => s.once('close', resolve))));
      for (const socket of held) socket.end();
      await closedAll;
      const final = await server.shutdown(1000);
      assert.equal(final.accepted, 200);
      assert.deepEqual(leakedSince(before), []);
    });
  }

  it('the herd warning: select and poll sharing a listener, never epoll or reuseport or one thread', () => {
    assert.match(herdWarning('poll', 'exclusive', 2)!, /thundering herd/);
    assert.match(herdWarning('select', 'exclusive', 4)!, /all 4 threads wake/);
    assert.equal(herdWarning('epoll', 'exclusive', 2), null);
    assert.equal(herdWarning('poll', 'reuseport', 2), null);
    assert.equal(herdWarning('poll', 'exclusive', 1), null);
  });

  it('aggregate: counters are summed, the largest queue is the largest', () => {
    const thread = (n: number, maxQueued: number): ThreadStats => ({
      thread: n, tid: null, handedOff: n, connections: 1, accepted: 2, refused: 0, closed: 1, errors: 0, bytesIn: 10 * n,
      bytesOut: 10 * n, maxQueued, wakeups: 3, events: 4,
    });
    const total = aggregate([thread(1, 500), thread(2, 70)]);
    assert.equal(total.accepted, 4);
    assert.equal(total.bytesIn, 30);
    assert.equal(total.maxQueued, 500);
    assert.equal(total.threads.length, 2);
  });
});

describe('ConnectionBalancer (the shared memory of exact balance)', () => {
  function group(threads: number, capacity = 8): { balancers: ConnectionBalancer[]; woken: number[] } {
    const memory = ConnectionBalancer.allocate(threads, capacity);
    const woken: number[] = [];
    return { balancers: Array.from({ length: threads }, (_, i) => new ConnectionBalancer(memory, threads, i, (t) => woken.push(t))), woken };
  }

  it('an accepted descriptor goes to the thread with the fewest open connections; ties stay with the acceptor', () => {
    const { balancers: [a, b, c], woken } = group(3);
    assert.equal(a.place(100), false, 'all equal: keep it');
    assert.equal(a.place(101), true, 'a has 1, b and c 0: hand it over');
    assert.deepEqual(woken, [1]);
    assert.deepEqual(b.takeHandedIn(), [101]);
    assert.deepEqual(b.takeHandedIn(), [], 'taken once');
    assert.equal(a.place(102), true);
    assert.deepEqual(woken, [1, 2]);
    assert.deepEqual(c.takeHandedIn(), [102]);
    assert.deepEqual([a.load(0), a.load(1), a.load(2)], [1, 1, 1]);
    assert.equal(a.handedOff, 2);
    assert.equal(b.handedIn + c.handedIn, 2);
    a.released();
    assert.equal(b.place(103), true, 'a closed one: b hands the next to a');
    assert.deepEqual(a.takeHandedIn(), [103]);
  });

  it('a full or closed inbox is skipped: the acceptor keeps the connection; close() returns what was never adopted', () => {
    const { balancers: [a, b] } = group(2, 2);
    // a keeps one, hands one to b, keeps one (a tie), hands one (b's inbox holds two now), keeps one.
    assert.deepEqual([10, 11, 12, 13, 14].map((fd) => a.place(fd)), [false, true, false, true, false]);
    assert.equal(a.place(15), false, 'b\'s inbox is full');
    assert.deepEqual(b.close(), [11, 13], 'b never adopted them: its owner closes them');
    assert.equal(a.place(20), false, 'b is closed');
    assert.equal(b.load(1), 0, 'what b never adopted is not counted as its load');
  });

  it('refuses a self index or a memory that does not fit', () => {
    const memory = ConnectionBalancer.allocate(2, 4);
    assert.throws(() => new ConnectionBalancer(memory, 2, 2, () => undefined), RangeError);
    assert.throws(() => new ConnectionBalancer(memory, 5, 0, () => undefined), RangeError);
    assert.throws(() => ConnectionBalancer.allocate(0), RangeError);
  });
});
