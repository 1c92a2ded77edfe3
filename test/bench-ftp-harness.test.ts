/**
 * The FTP benchmark's harness measures the servers fairly and cleans up after itself: a forking
 * server's sessions are counted to the nanosecond while they live (not in 10 ms ticks that round a
 * thousand short sessions to nothing), every server has a session of its own, and a Ctrl-C to the
 * benchmark leaves no server behind although none of them shares its process group.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startFtpServer, treeCpuSeconds } from '../bench/ftp-servers';

const cli = path.resolve(__dirname, '..', 'tools', 'cli.js');
const PYTHON = '/usr/bin/python3';

function statFields(pid: number): string[] {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Gone, or a zombie nobody has reaped yet: either way it runs no more. */
function ended(pid: number): boolean {
  try {
    return statFields(pid)[0] === 'Z';
  } catch {
    return true;
  }
}

function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      found.push(...fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      // The thread ended.
    }
  }
  return found;
}

describe('bench --ftp harness: fair measurement, nothing left behind', function () {
  this.timeout(60_000);

  it('a forking server\'s short-lived sessions count while alive: 40 children of 5 ms CPU each are 0.2 s, not 0 ticks', async () => {
    // Each child spins for 5 ms of its own CPU time, then says so and waits for stdin to close.
    const parent = spawn(PYTHON, ['-c', `
import os, sys, time
for _ in range(40):
    if os.fork() == 0:
        start = time.process_time()
        while time.process_time() - start < 0.005:
            pass
        os.write(1, b'x')
        sys.stdin.read()
        os._exit(0)
sys.stdin.read()
`], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) => {
        let spun = 0;
        parent.stdout!.on('data', (chunk: Buffer) => {
          spun += chunk.length;
          if (spun === 40) resolve();
        });
      });
      const own = statFields(parent.pid!);
      const parentAtMost = (Number(own[11]) + Number(own[12]) + 2) / 100; // Its ticks, and two more for truncation.
      const children = treeCpuSeconds(parent.pid!) - parentAtMost;
      assert.ok(children >= 0.15, `the children's CPU read as ${children.toFixed(3)} s`);
    } finally {
      parent.stdin!.end();
      await new Promise((resolve) => parent.once('exit', resolve));
    }
  });

  it('each server runs in a session of its own (its own scheduler autogroup, as each vsftpd session makes itself)', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-ftp-harness-'));
    const server = await startFtpServer('iomux-epoll', path.join(base, 'root'), base, undefined);
    try {
      assert.equal(Number(statFields(server.pid)[3]), server.pid, 'the session id is its own pid');
      if (fs.existsSync('/proc/self/autogroup')) { // CONFIG_SCHED_AUTOGROUP
        assert.notEqual(fs.readFileSync(`/proc/${server.pid}/autogroup`, 'utf8'), fs.readFileSync('/proc/self/autogroup', 'utf8'));
      }
    } finally {
      await server.stop();
      fs.rmSync(base, { recursive: true, force: true });
    }
  });

  it('a Ctrl-C to the benchmark stops the servers it started, though they are in other sessions', async () => {
    const bench = spawn(process.execPath, [cli, 'bench', '--ftp', '--ftp-servers', 'vsftpd,iomux-epoll', '--ftp-clients', '5',
      '--ftp-file-size', '65536', '--ftp-transfer-size', '1048576', '--ftp-seconds', '0.1', '--ftp-whole-size', '67108864',
      '--ftp-whole-rounds', '50', '--out', fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-ftp-harness-out-'))], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => bench.once('exit', (code) => resolve(code)));
    bench.stdout!.resume();
    bench.stderr!.resume();
    // The whole-file part runs every server at once: wait for it (no progress lines without a terminal), then interrupt.
    const servers = await new Promise<number[]>((resolve) => {
      const check = () => {
        const found = childrenOf(bench.pid!).filter((pid) => {
          try {
            const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
            return args[0].endsWith('/vsftpd') || (args.includes('ftp') && args.includes('serve')); // Exec'd, not a fork of us yet.
          } catch {
            return false; // Gone meanwhile.
          }
        });
        if (found.length === 2) resolve(found);
        else setTimeout(check, 20);
      };
      check();
    });
    bench.kill('SIGINT');
    assert.equal(await exited, 130, 'the benchmark ends as interrupted (bench/suite.ts), as it would without servers');
    await new Promise<void>((resolve) => {
      const check = () => (servers.every(ended) ? resolve() : setTimeout(check, 20));
      check();
    });
  });
});
