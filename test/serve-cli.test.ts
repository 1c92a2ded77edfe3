/** `iomux serve` as a user runs it: a child process, blocking and attached modes, real clients, SIGTERM. */
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { binding } from '../lib/native';
import { concurrentEcho } from './echo-clients';

const cli = path.resolve(__dirname, '..', 'tools', 'cli.js');

interface Served {
  child: ChildProcess;
  port: number;
  output: () => string;
}

function serve(args: string[]): Promise<Served> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`iomux serve did not start: ${out}`));
    }, 10000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (?:\[[^\]]+\]|[^\s:]+):(\d+)\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), output: () => out });
      }
    });
    child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`iomux serve exited (${code}) before listening: ${out}`));
    });
  });
}

/** SIGTERM, then the exit code and the stats line it printed. */
function terminate(served: Served): Promise<{ code: number | null; stats: Record<string, number> }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      served.child.kill('SIGKILL');
      reject(new Error(`iomux serve did not stop on SIGTERM: ${served.output()}`));
    }, 10000);
    served.child.removeAllListeners('exit');
    served.child.on('exit', (code) => {
      clearTimeout(timer);
      const m = /^stats (\{.*\})$/m.exec(served.output());
      if (!m) reject(new Error(`no stats line in: ${served.output()}`));
      else resolve({ code, stats: JSON.parse(m[1]) as Record<string, number> });
    });
    served.child.kill('SIGTERM');
  });
}

describe('iomux serve (CLI)', function () {
  this.timeout(30000);
  const variants: string[][] = [['--mechanism', 'select'], ['--mechanism', 'poll'], ['--mechanism', 'poll', '--mode', 'attached']];
  if (binding.epoll_wait) {
    variants.push(['--mechanism', 'epoll'], ['--mechanism', 'epoll', '--edge'], ['--mechanism', 'epoll', '--edge', '--write', 'direct'],
      ['--mechanism', 'epoll', '--mode', 'attached'], ['--mechanism', 'epoll', '--mode', 'attached', '--via', 'wait-thread']);
  }

  for (const args of variants) {
    it(`${args.join(' ')} --port 0: prints the real port, echoes real clients, stops on SIGTERM with stats`, async () => {
      const served = await serve([...args, '--port', '0']);
      const total = await concurrentEcho({ port: served.port }, 30, 100 * 1024, 42);
      const { code, stats } = await terminate(served);
      assert.equal(code, 0);
      assert.equal(stats.accepted, 30);
      assert.equal(stats.bytesIn, total);
      assert.equal(stats.bytesOut, total);
      assert.equal(stats.connections, 0);
    });
  }

  it('the seed demo: a greeting on connect and a suffix on every reply', async () => {
    const served = await serve(['--port', '0', '--greeting', 'Welcome!', '--suffix', '好好']);
    const transcript = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(served.port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => {
        chunks.push(d);
        const text = Buffer.concat(chunks).toString();
        if (text === 'Welcome!') socket.end('hi');
      });
      socket.on('end', () => resolve(Buffer.concat(chunks).toString()));
      socket.on('error', reject);
    });
    assert.equal(transcript, 'Welcome!hi好好');
    const { code } = await terminate(served);
    assert.equal(code, 0);
  });

  it('SIGTERM flushes what is queued to a connected client before closing it', async () => {
    const served = await serve(['--port', '0']);
    const socket = net.connect(served.port, '127.0.0.1');
    await new Promise((r) => socket.on('connect', r));
    const payload = Buffer.alloc(200 * 1024, 7);
    socket.write(payload);
    // Wait for the first echoed byte: the server has read (some of) it.
    const received: Buffer[] = [];
    await new Promise<void>((resolve) => socket.once('data', (d: Buffer) => { received.push(d); resolve(); }));
    socket.pause();
    // Our end of stream lets the server's lingering close finish at once.
    const ended = new Promise<void>((resolve) => socket.on('end', () => { socket.end(); resolve(); }));
    const stopped = terminate(served);
    socket.on('data', (d: Buffer) => received.push(d));
    socket.resume();
    await ended;
    const { code, stats } = await stopped;
    assert.equal(code, 0);
    assert.equal(Buffer.concat(received).length, stats.bytesIn, 'everything read was sent back before the close');
    socket.destroy();
  });

  it('iomux client: prints the greeting, each reply with its suffix, and quits on q', async () => {
    const served = await serve(['--port', '0', '--greeting', 'Welcome!', '--suffix', ' 好好']);
    const transcript = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [cli, 'client', '--port', String(served.port)], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`client hung: ${out}`)); }, 15000);
      child.on('exit', (code) => { clearTimeout(timer); if (code === 0) resolve(out); else reject(new Error(`client exited ${code}: ${out}`)); });
      child.stdin.end('hello\nwörld\nq\nnever sent\n');
    });
    assert.equal(transcript, 'Welcome!\nhello 好好\nwörld 好好\n');
    const { stats } = await terminate(served);
    assert.equal(stats.bytesIn, Buffer.byteLength('hellowörld'));
  });

  it('serves a Unix socket path and removes it on exit', async () => {
    const sock = path.join(os.tmpdir(), `iomux-test-${process.pid}.sock`);
    const child = spawn(process.execPath, [cli, 'serve', '--unix', sock], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes(`listening on unix:${sock}`)) resolve();
      });
      child.on('exit', () => reject(new Error(out)));
    });
    const served: Served = { child, port: 0, output: () => out };
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    await concurrentEcho({ path: sock }, 10, 10 * 1024, 11);
    const { code } = await terminate(served);
    assert.equal(code, 0);
    assert.equal(require('node:fs').existsSync(sock), false);
  });

  for (const mode of ['attached', 'blocking']) {
    it(`--mode ${mode}: when the grace period runs out on a client that never ends, the stats are printed once`, async () => {
      const served = await serve(['--mode', mode, '--grace', '100', '--port', '0']);
      // A client that reads everything but never ends its side: the lingering close waits for it.
      const socket = net.connect({ port: served.port, host: '127.0.0.1', allowHalfOpen: true });
      await new Promise((r) => socket.on('connect', r));
      socket.write('ping');
      await new Promise<void>((resolve) => socket.once('data', () => resolve()));
      socket.on('data', () => undefined);
      const { code, stats } = await terminate(served);
      socket.destroy();
      assert.equal(code, 0);
      assert.equal(stats.bytesIn, 4);
      assert.equal(stats.connections, 0, 'the stats are the final ones, after the close');
      assert.equal(served.output().match(/^stats /gm)?.length, 1, served.output());
    });
  }

  it('--help describes the command; a bad mechanism or --edge without epoll is a clear error', async () => {
    const run = (args: string[]) => new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      child.on('exit', (code) => resolve({ code, out }));
    });
    const help = await run(['serve', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /--mechanism/);
    assert.match(help.out, /listening on HOST:PORT/);
    const bad = await run(['serve', '--mechanism', 'kqueue']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.out, /Allowed choices/);
    const edge = await run(['serve', '--mechanism', 'poll', '--edge']);
    assert.notEqual(edge.code, 0);
    assert.match(edge.out, /--edge needs --mechanism epoll/);
    const via = await run(['serve', '--via', 'wait-thread']);
    assert.notEqual(via.code, 0);
    assert.match(via.out, /--via needs --mode attached/);
  });
});
