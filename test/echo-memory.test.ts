/**
 * Backpressure, measured where it matters: the server process's memory. A client pushes 256 MiB
 * through `iomux serve` and reads the echo slowly; the server's peak resident set (VmHWM, kept by
 * the kernel, so no sampling can miss a peak) stays within a bound far below what buffering the
 * stream would take.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { selectorVariants } from './fixtures';
import { startChild } from './helpers';

const cli = path.resolve(__dirname, '..', 'tools', 'cli.js');
const TOTAL = 256 * 1024 * 1024;
const BOUND = 64 * 1024 * 1024;

/** A field of /proc/PID/status, in bytes. */
function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  if (!line) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(/(\d+)\s*kB/.exec(line)![1]) * 1024;
}

describe('echo server: memory under a slow reader', function () {
  this.timeout(120000);

  for (const variant of selectorVariants()) {
    const args = ['--mechanism', variant.mechanism, ...(variant.options.edgeTriggered ? ['--edge'] : [])];
    it(`${args.join(' ')}: 256 MiB through a slow reader raises the server's peak RSS by less than 64 MiB`, async () => {
      const { child, match, exited } = await startChild(process.execPath,
        [cli, 'serve', ...args, '--port', '0', '--quiet', '--high-water', String(256 * 1024)], /listening on [^:]+:(\d+)/);
      const port = Number(match[1]);
      try {
        const baseline = statusBytes(child.pid!, 'VmRSS');
        const sent = createHash('sha256');
        const received = createHash('sha256');
        let receivedBytes = 0;
        await new Promise<void>((resolve, reject) => {
          const socket = net.connect(port, '127.0.0.1');
          socket.on('error', reject);
          socket.on('data', (chunk: Buffer) => {
            received.update(chunk);
            receivedBytes += chunk.length;
            // Slow (about 100 MB/s at most): a pause after every MiB, resumed by a later timer. The
            // writer is many times faster, so without backpressure the server would hold most of it.
            if (receivedBytes % (1024 * 1024) < chunk.length) {
              socket.pause();
              setTimeout(() => socket.resume(), 10);
            }
          });
          socket.on('end', () => resolve());
          socket.on('connect', async () => {
            const block = Buffer.alloc(1024 * 1024);
            for (let offset = 0; offset < TOTAL; offset += block.length) {
              block.writeUInt32LE(offset, 0);
              sent.update(block);
              if (!socket.write(Buffer.from(block))) await new Promise((r) => socket.once('drain', r));
            }
            socket.end();
          });
        });
        assert.equal(receivedBytes, TOTAL);
        assert.equal(received.digest('hex'), sent.digest('hex'));
        const peak = statusBytes(child.pid!, 'VmHWM');
        assert.ok(peak - baseline < BOUND,
          `the server's peak RSS rose by ${((peak - baseline) / 1048576).toFixed(1)} MiB (from ${(baseline / 1048576).toFixed(1)} MiB)`);
      } finally {
        child.kill('SIGTERM');
      }
      assert.equal(await exited, 0);
    });
  }
});
