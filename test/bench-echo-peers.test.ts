/**
 * The echo benchmark's peers written for it — the C io_uring server (bench/echo-uring.c) and the two
 * Python servers (bench/py-select-echo.py, bench/py-asyncio-echo.py) — are echo servers first: every
 * byte back in order, a half-close answered after the echo, a reset or a reader that pauses survived,
 * and (io_uring) running out of provided buffers recovered from without losing a byte.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { serverCommand, SYSTEM_PYTHON } from '../bench/echo';
import { programPath, runJsonLines } from '../bench/programs';
import type { LoadgenReport } from '../bench/echo';
import { ioUringUnavailable } from '../lib/selectors/io-uring';
import { concurrentEcho, random, randomBytes } from './echo-clients';
import { startChild, StartedChild } from './helpers';
import { requireTool } from './run-tool';
import { skipUnless } from './skip';

const LISTENING = /listening on [^\n]*:(\d+)\n/;

async function stopped(server: StartedChild): Promise<Record<string, unknown>> {
  server.child.kill('SIGTERM');
  assert.equal(await server.exited, 0);
  const line = server.output().split('\n').find((l) => l.startsWith('stats '));
  assert.ok(line, `no stats line in ${server.output()}`);
  return JSON.parse(line.slice(6)) as Record<string, unknown>;
}

/** Writes `payload` while not reading at all, then reads everything back: the server must have waited, not dropped. */
function pausedReader(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.pause();
    socket.on('error', reject);
    socket.write(payload, () => {
      // Everything is in the kernel's buffers or the server's queue: now read.
      socket.on('data', (chunk) => {
        received.push(chunk);
        if (received.reduce((n, b) => n + b.length, 0) >= payload.length) socket.end();
      });
      socket.resume();
    });
    socket.on('close', () => resolve(Buffer.concat(received)));
  });
}

/** A client that sends half a message and resets the connection (RST, not FIN). */
function resetMidway(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(Buffer.alloc(4096, 7), () => socket.resetAndDestroy());
    });
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
}

function describePeer(name: 'c-uring' | 'py-select' | 'py-asyncio', unavailable: () => string | null) {
  describe(`bench echo peer ${name}`, function () {
    this.timeout(60_000);
    let server: StartedChild;

    before(async function () {
      const why = unavailable();
      skipUnless(this, why === null, why!);
      const { file, args } = serverCommand(name);
      server = await startChild(file, args, LISTENING);
    });

    after(async () => {
      if (server && server.child.exitCode === null) {
        server.child.kill('SIGKILL');
        await server.exited;
      }
    });

    it('echoes every byte of 30 concurrent clients, each half-closing after its last piece', async () => {
      const total = await concurrentEcho({ port: Number(server.match[1]) }, 30, 200_000, 23);
      assert.ok(total > 0);
    });

    it('keeps a reader that pauses: 8 MiB written before a byte is read all comes back, in order', async () => {
      const payload = randomBytes(random(5), 8 * 2 ** 20);
      const reply = await pausedReader(Number(server.match[1]), payload);
      assert.equal(reply.length, payload.length);
      assert.ok(reply.equals(payload), 'the same bytes in the same order');
    });

    it('survives a peer that resets mid-message, and serves the next one', async () => {
      const port = Number(server.match[1]);
      await resetMidway(port);
      await resetMidway(port);
      assert.ok((await concurrentEcho({ port }, 3, 10_000, 7)) > 0);
      const stats = await stopped(server);
      assert.equal(typeof stats.accepted, 'number');
      assert.ok((stats.accepted as number) >= 30 + 1 + 2 + 3, JSON.stringify(stats));
    });
  });
}

/** Python is a requirement (README), not a platform's absence: a missing one fails. */
const pythonMissing = (): null => {
  requireTool(SYSTEM_PYTHON, ['--version'], 'python3');
  return null;
};
const uringMissing = () => ioUringUnavailable()?.message ?? null;
describePeer('c-uring', uringMissing);
describePeer('py-select', pythonMissing);
describePeer('py-asyncio', pythonMissing);

describe('bench echo peer c-uring: running out of provided buffers', function () {
  this.timeout(60_000);

  it('ends a multishot recv with -ENOBUFS, re-arms it once buffers are back, and loses no byte (8 buffers, 64 connections)', async function () {
    skipUnless(this, uringMissing() === null, uringMissing()!);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-echo-uring-'));
    try {
      const file = path.join(dir, 'echo-uring-8');
      execFileSync(process.env.CC || 'cc', ['-O2', '-DBUFFERS=8', '-o', file, path.join(__dirname, '..', '..', 'bench', 'echo-uring.c')]);
      const server = await startChild(file, [], LISTENING);
      const [report] = await runJsonLines<LoadgenReport>(programPath('bench-loadgen'), ['--port', server.match[1], '--connections', '64',
        '--depth', '4', '--size', '20000', '--warmup-ms', '0', '--duration-ms', '300']);
      const stats = await stopped(server);
      assert.ok(report.messagesTotal > 0);
      assert.equal(report.bytesVerified, report.messagesTotal * 20000, 'every byte came back verified');
      assert.ok((stats.noBuffers as number) > 0, `the ring ran dry at least once: ${JSON.stringify(stats)}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
