/**
 * socketserver: TCPServer (one client at a time, in a child process: its handlers block the thread
 * they run on) and ThreadingServer (in this process: handlers block worker threads, never this one),
 * against real loopback clients. Every test gives back every descriptor it opened.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { ThreadingServer, ThreadingServerOptions } from '../lib/socketserver';
import { Framed, LineCommands, Unplaced } from './fixtures/socketserver-handlers';
import { leakedSince, openKernelObjects } from './helpers';

/** A line-oriented test client: next() is the next line the server sent; `ended` resolves at its end. */
class LineClient {
  readonly socket: net.Socket;
  readonly connected: Promise<void>;
  /** Our port, as the server sees it (the socket forgets it once closed). */
  port = -1;
  readonly ended: Promise<void>;
  private buffered = '';
  private readonly lines: string[] = [];
  private readonly waiting: ((line: string | null) => void)[] = [];
  private done = false;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', () => {
        this.port = this.socket.localPort!;
        resolve();
      });
      this.socket.once('error', reject);
    });
    this.socket.on('data', (d: Buffer) => {
      this.buffered += d.toString();
      for (let at = this.buffered.indexOf('\n'); at >= 0; at = this.buffered.indexOf('\n')) {
        this.deliver(this.buffered.slice(0, at));
        this.buffered = this.buffered.slice(at + 1);
      }
    });
    this.ended = new Promise((resolve) => {
      const end = () => {
        this.done = true;
        for (const w of this.waiting.splice(0)) w(null);
        resolve();
      };
      this.socket.once('end', end);
      this.socket.once('close', end);
    });
    this.socket.on('error', () => undefined); // a refused or reset connection ends like any other here
  }

  /** The next line, or null if the connection ended first. */
  next(): Promise<string | null> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.done) return Promise.resolve(null);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Every line still to come, until the end. */
  async rest(): Promise<string[]> {
    const all: string[] = [];
    for (let line = await this.next(); line !== null; line = await this.next()) all.push(line);
    return all;
  }

  send(line: string): void {
    this.socket.write(`${line}\n`);
  }

  end(): void {
    this.socket.end();
  }

  private deliver(line: string): void {
    const w = this.waiting.shift();
    if (w) w(line);
    else this.lines.push(line);
  }
}

function once<T extends unknown[]>(server: ThreadingServer, event: string, times = 1): Promise<T[]> {
  return new Promise((resolve) => {
    const seen: T[] = [];
    const on = (...args: unknown[]) => {
      seen.push(args as T);
      if (seen.length === times) {
        server.off(event, on);
        resolve(seen);
      }
    };
    server.on(event, on);
  });
}

describe('socketserver: ThreadingServer', function () {
  this.timeout(60000);
  let before: Map<number, string>;
  let server: ThreadingServer | null;
  let logged: string[];

  function start(options: ThreadingServerOptions = {}, Handler = LineCommands): { server: ThreadingServer; port: number } {
    logged = [];
    server = new ThreadingServer({ host: '127.0.0.1', port: 0 }, Handler, { log: (line) => logged.push(line), ...options });
    void server.serveForever();
    return { server, port: server.serverAddress.port };
  }

  beforeEach(() => {
    before = openKernelObjects();
    server = null;
  });

  afterEach(async () => {
    if (server !== null) {
      await server.shutdown();
      server.serverClose();
    }
    assert.deepEqual(leakedSince(before), [], 'every connection, listener and worker descriptor is closed');
  });

  it('concurrency: 8 handlers block at once, each on a thread of its own', async () => {
    const { server: s, port } = start({ maxThreads: 8 });
    const clients = Array.from({ length: 8 }, () => new LineClient(port));
    const threads = await Promise.all(clients.map((c) => c.next()));
    for (const c of clients) c.send('wait');
    // Every handler is now blocked reading its next line: all 8 can only say "waiting" if they run side by side.
    assert.deepEqual(await Promise.all(clients.map((c) => c.next())), Array(8).fill('waiting'));
    assert.equal(new Set(threads).size, 8, `eight different threads: ${threads.join(', ')}`);
    assert.equal(s.stats.busy, 8);
    assert.equal(s.stats.threads, 8);
    for (const c of clients) {
      c.send('bye');
      c.end();
    }
    for (const c of clients) assert.deepEqual(await c.rest(), ['BYE']);
    assert.equal(s.stats.errors, 0);
  });

  it('a slow handler (a blocking sleep) does not delay the others; shutdown stops it after the grace period', async () => {
    const { server: s, port } = start({ graceMs: 100 });
    const sleeper = new LineClient(port);
    await sleeper.next();
    sleeper.send('sleep 60000');
    assert.equal(await sleeper.next(), 'sleeping');
    // While it sleeps, 20 other clients are served in full.
    const served = once(s, 'requestDone', 20);
    const others = Array.from({ length: 20 }, () => new LineClient(port));
    await Promise.all(others.map(async (c, i) => {
      assert.match((await c.next())!, /^hello \d+$/);
      c.send(`client ${i}`);
      c.end();
      assert.deepEqual(await c.rest(), [`CLIENT ${i}`]);
    }));
    await served;
    assert.equal(s.stats.busy, 1, 'the sleeper is still asleep');
    // Its handler cannot finish within the grace period: its connection is shut down, its thread stopped.
    await s.shutdown();
    assert.deepEqual(await sleeper.rest(), [], 'no "woke": the handler never got to write it');
    assert.equal(s.stats.aborted, 1);
    assert.equal(s.stats.handled, 20);
    assert.equal(s.stats.threads, 0);
    assert.match(logged.join('\n'), /did not finish within the 100 ms grace period: its connection is shut down and its thread stopped/);
  });

  it('a handler that throws is logged, its connection closed, and its worker serves the next client', async () => {
    const { server: s, port } = start({ maxThreads: 1 });
    const failing = new LineClient(port);
    await failing.connected;
    const thread = await failing.next();
    const errors = once(s, 'handlerError');
    failing.send('throw');
    assert.deepEqual(await failing.rest(), []);
    await errors;
    const text = logged.join('\n');
    assert.match(text, new RegExp(`Exception occurred during processing of request from 127\\.0\\.0\\.1:${failing.port}`));
    assert.match(text, /Error: handler failed on purpose/);
    const next = new LineClient(port);
    assert.equal(await next.next(), thread, 'the same worker thread');
    next.end();
    await next.rest();
    assert.equal(s.stats.errors, 1);
    assert.equal(s.stats.died, 0);
    assert.equal(s.stats.started, 1);
  });

  it('the pool grows on demand up to maxThreads, and idle workers retire (down to minThreads)', async () => {
    const { server: s, port } = start({ maxThreads: 4, minThreads: 1, idleTimeoutMs: 50 });
    assert.equal(s.stats.threads, 1, 'minThreads are started by serveForever()');
    const clients = Array.from({ length: 4 }, () => new LineClient(port));
    await Promise.all(clients.map((c) => c.next()));
    for (const c of clients) c.send('wait');
    await Promise.all(clients.map((c) => c.next()));
    assert.equal(s.stats.threads, 4);
    assert.equal(s.stats.peakThreads, 4);
    assert.equal(s.stats.started, 4);
    const retired = once(s, 'workerRetire', 3);
    for (const c of clients) c.end();
    await Promise.all(clients.map((c) => c.rest()));
    await retired;
    assert.equal(s.stats.threads, 1, 'one stays: minThreads');
    assert.equal(s.stats.retired, 3);
    // And the pool grows again.
    const again = new LineClient(port);
    assert.match((await again.next())!, /^hello/);
    again.end();
    await again.rest();
  });

  it('when every worker is busy, a connection waits in the queue; past queueSize it is refused with a log line', async () => {
    const { server: s, port } = start({ maxThreads: 1, queueSize: 1 });
    const holder = new LineClient(port);
    await holder.next();
    const queued = once(s, 'queue');
    const waiter = new LineClient(port);
    await queued;
    const refusedEvent = once(s, 'refuse');
    const refused = new LineClient(port);
    await refused.connected;
    await refusedEvent;
    assert.deepEqual(await refused.rest(), [], 'closed unserved');
    assert.match(logged.join('\n'), new RegExp(`refused 127\\.0\\.0\\.1:${refused.port}: all 1 threads are busy and 1 connections are waiting`));
    assert.equal(s.stats.refused, 1);
    assert.equal(s.stats.queued, 1);
    // The holder leaves: the waiter is served by the same worker.
    holder.end();
    await holder.rest();
    assert.match((await waiter.next())!, /^hello/);
    waiter.send('served');
    waiter.end();
    assert.deepEqual(await waiter.rest(), ['SERVED']);
    assert.equal(s.stats.peakQueued, 1);
    assert.equal(s.stats.started, 1);
  });

  it('shutdown waits for a running handler within the grace period; new connections are refused meanwhile', async () => {
    const { server: s, port } = start({ graceMs: 30000 });
    const client = new LineClient(port);
    await client.next();
    client.send('wait');
    assert.equal(await client.next(), 'waiting');
    const stopped = s.shutdown();
    // The listener is closed at once.
    await assert.rejects(new Promise((resolve, reject) => {
      const late = net.connect(port, '127.0.0.1', () => resolve(late));
      late.once('error', reject);
    }), { code: 'ECONNREFUSED' });
    client.send('last words');
    client.end();
    assert.deepEqual(await client.rest(), ['LAST WORDS']);
    await stopped;
    assert.equal(s.stats.aborted, 0);
    assert.equal(s.stats.handled, 1);
  });

  it('shutdown: a handler blocked in recv past the grace period is woken by shutting its connection down', async () => {
    const { server: s, port } = start({ graceMs: 50 });
    const client = new LineClient(port);
    await client.next();
    client.send('wait');
    assert.equal(await client.next(), 'waiting');
    await s.shutdown(); // the client never sends its next line
    assert.deepEqual(await client.rest(), []);
    assert.equal(s.stats.aborted, 1);
    client.socket.destroy();
  });

  it('a worker that dies in a handler is replaced, and its connection is closed by the server', async () => {
    const { server: s, port } = start({ maxThreads: 2 });
    const dying = new LineClient(port);
    const thread = await dying.next();
    const death = once<[number, number]>(s, 'workerDeath');
    dying.send('die');
    assert.deepEqual(await dying.rest(), [], 'closed: the descriptor did not leak with the thread');
    const [[, code]] = await death;
    assert.equal(code, 7);
    assert.match(logged.join('\n'), /worker 1 died \(exit code 7\) while serving 127\.0\.0\.1:\d+ \(its connection is closed\); replacing it/);
    assert.equal(s.stats.died, 1);
    assert.equal(s.stats.threads, 1, 'the replacement');
    const next = new LineClient(port);
    const other = await next.next();
    assert.notEqual(other, thread);
    next.end();
    await next.rest();
  });

  it('StreamRequestHandler: exact-length reads across any split of the stream', async () => {
    const { port } = start({}, Framed);
    const bodies = [Buffer.from('a'), Buffer.alloc(70000, 9), Buffer.from('hello world')];
    const stream = Buffer.concat(bodies.flatMap((b) => [Buffer.from([0, 0, 0, 0].map((_, i) => (b.length >>> (24 - 8 * i)) & 0xff)), b]));
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('end', () => resolve(Buffer.concat(chunks)));
      socket.on('error', reject);
      // One byte, then the rest in uneven pieces.
      socket.write(stream.subarray(0, 1));
      for (let at = 1; at < stream.length; at += 7919) socket.write(stream.subarray(at, Math.min(stream.length, at + 7919)));
      socket.end();
    });
    assert.deepEqual(reply, Buffer.concat(bodies.map((b) => Buffer.from(b).reverse())));
  });

  it('a handler class must say which file worker threads load it from; maxThreads and friends are checked', () => {
    assert.throws(() => new ThreadingServer({ port: 0 }, Unplaced), /static module = __filename/);
    assert.throws(() => new ThreadingServer({ port: 0 }, LineCommands, { maxThreads: 0 }), RangeError);
    assert.throws(() => new ThreadingServer({ port: 0 }, LineCommands, { minThreads: 3, maxThreads: 2 }), RangeError);
    class NotExported extends LineCommands {
      static override module = __filename;
    }
    assert.throws(() => new ThreadingServer({ port: 0 }, NotExported), /has no export named NotExported/);
  });
});

describe('socketserver: TCPServer', function () {
  this.timeout(30000);

  it('serves one client at a time: the next one is set up only after the previous one finished', async () => {
    const script = `
      const { TCPServer } = require('./dist/lib/socketserver');
      const { Logged } = require('./dist/test/fixtures/socketserver-handlers');
      const server = new TCPServer({ host: '127.0.0.1', port: 0 }, Logged);
      process.stdout.write('port ' + server.serverAddress.port + '\\n');
      process.on('SIGTERM', () => server.shutdown().then(() => { server.serverClose(); process.stdout.write('stopped\\n'); }));
      server.serveForever();
    `;
    const child = spawn(process.execPath, ['-e', script], { cwd: path.resolve(__dirname, '..', '..'), stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let out = '';
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /port (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`exited (${code}): ${out}`)));
    });
    // Both connect at once; a writes, b writes; a is served while b waits in the backlog.
    const a = new LineClient(port);
    const b = new LineClient(port);
    await Promise.all([a.connected, b.connected]);
    a.send('one');
    b.send('two');
    assert.equal(await a.next(), 'one');
    a.end();
    await a.rest();
    assert.equal(await b.next(), 'two');
    b.end();
    await b.rest();
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    const order = out.split('\n').filter((l) => /^(setup|finish) /.test(l));
    const [pa, pb] = [a.port, b.port];
    assert.deepEqual(order, [`setup ${pa}`, `finish ${pa}`, `setup ${pb}`, `finish ${pb}`]);
    assert.match(out, /stopped/);
  });
});
