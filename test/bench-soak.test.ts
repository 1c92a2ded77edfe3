/**
 * Smoke test of the soak benchmark: `iomux bench --soak` with tiny parameters (200 connections held
 * 2 s, 2,000 churn cycles) runs iomux serve and Node's net through the hold and the churn, and the
 * result has the shape the docs describe, with every target evaluated — whether the targets are met
 * is the benchmark's business (it depends on the machine), not the test's. The load generator's own
 * checks are tested against servers that break the stream: errors and lost bytes must show.
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_PARTS, FULL_PARTS } from '../bench/options';
import { programPath } from '../bench/programs';
import type { ChurnReport, HoldReport } from '../bench/soak';
import type { SuiteResult } from '../bench/suite';

const cli = path.resolve(__dirname, '..', 'tools', 'cli.js');

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { maxBuffer: 16 * 2 ** 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A server that echoes every chunk with its first byte flipped, or closes each connection on its first data. */
function brokenServer(kind: 'corrupt' | 'close'): Promise<{ server: net.Server; port: number }> {
  return new Promise((resolve) => {
    const server = net.createServer((socket) => {
      socket.on('error', () => socket.destroy());
      socket.on('data', (chunk) => {
        if (kind === 'close') {
          socket.destroy();
          return;
        }
        const copy = Buffer.from(chunk);
        copy[0] ^= 0xff;
        socket.write(copy);
      });
    });
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port }));
  });
}

function doneLine<T>(stdout: string): T {
  const line = stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '').map((l) => JSON.parse(l) as { type: string })
    .find((l) => l.type === 'done');
  assert.ok(line, `a "done" line in ${stdout}`);
  return line as T;
}

describe('iomux bench --soak (smoke: 200 connections for 2 s, 2,000 churn cycles)', function () {
  this.timeout(180_000);
  let dir: string;
  let result: SuiteResult;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-bench-soak-'));
    const bench = await run(process.execPath, [cli, 'bench', '--soak', '--no-progress', '--soak-connections', '200', '--soak-duration', '2',
      '--soak-sample', '500', '--churn-cycles', '2000', '--churn-warmup', '200', '--out', dir]);
    assert.equal(bench.code, 0, bench.stderr);
    result = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as SuiteResult;
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is its own part: neither in the default suite nor in --full', () => {
    assert.ok(!DEFAULT_PARTS.includes('soak'));
    assert.ok(!FULL_PARTS.includes('soak'));
    assert.deepEqual(result.parameters.parts, ['soak']);
    assert.equal(result.echo, null);
  });

  it('held the connections and churned the cycles on both servers, with every byte verified', () => {
    const soak = result.soak!;
    assert.equal(soak.options.connections, 200);
    assert.equal(soak.options.baselineMs, 2000);
    assert.deepEqual(soak.runs.map((r) => r.server), ['iomux-epoll', 'node']);
    for (const { server, hold, churn } of soak.runs) {
      assert.equal(hold.hold.connections, 200, server);
      assert.equal(hold.baseline.connections, 100, server);
      assert.ok(hold.hold.messages > 0 && hold.hold.bytesVerified > 0, `${server}: echoes while holding`);
      assert.ok(hold.holding.fds > hold.listening.fds, `${server}: the server held the connections (${hold.holding.fds} fds)`);
      assert.ok(hold.listening.rssBytes > 2 ** 20 && hold.holding.rssBytes > 2 ** 20, `${server}: RSS read`);
      const phases = new Set(hold.samples.map((s) => s.phase));
      assert.deepEqual([...phases], ['baseline', 'hold'], `${server}: samples of both holds`);
      assert.equal(churn.warmup.cycles, 200);
      assert.equal(churn.run.cycles, 2000);
      assert.ok(churn.run.cyclesPerSec > 0);
      assert.ok(churn.afterWarmup.rssBytes > 2 ** 20 && churn.after.rssBytes > 2 ** 20, `${server}: RSS read`);
      assert.ok(churn.samples.length >= 1, `${server}: the final churn sample`);
    }
  });

  it('evaluated every target for both servers', () => {
    const soakTargets = result.targets.filter((t) => / (soak|hold|churn): /.test(t.target));
    assert.equal(soakTargets.length, 12);
    for (const server of ['iomux-epoll', 'node']) {
      const mine = soakTargets.filter((t) => t.target.startsWith(`${server} `));
      assert.equal(mine.length, 6, server);
      for (const t of mine) {
        assert.equal(typeof t.value, 'number', t.target);
        assert.equal(typeof t.met, 'boolean', t.target);
        assert.equal(t.met, t.value! <= t.threshold, t.target);
      }
      assert.ok(mine.some((t) => t.target.includes('p99 at C=200 / p99 at C=100')), server);
      assert.ok(mine.some((t) => t.target.includes('RSS after / RSS after warm-up')), server);
    }
  });

  it('writes the tables, the CSV files and the chart', () => {
    const markdown = fs.readFileSync(path.join(dir, 'results.md'), 'utf8');
    assert.match(markdown, /\*\*Soak: 200 connections held 2 s/);
    assert.match(markdown, /\*\*Churn: 2,000 connect → 64 B echo → close cycles, 100 in parallel/);
    assert.match(markdown, /node churn: descriptors after − after warm-up/);
    const rows = (file: string) => fs.readFileSync(path.join(dir, file), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    const summary = rows('soak.csv');
    assert.match(summary[0], /^server,connections,p99_us_baseline,p99_us_hold,/);
    assert.equal(summary.length, 3);
    const samples = rows('soak-samples.csv');
    assert.equal(samples[0], 'server,phase,connections,elapsed_ms,echoes,p99_us,max_us,late,loadgen_lag_us,tcp_retrans_segs,tcp_timeouts,listen_drops,cycles,rss_bytes,fds');
    assert.ok(samples.length > 8);
    // Every hold sample carries its p99, the slowest echo, the load generator's own lag and the kernel's TCP counters.
    const result = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as SuiteResult;
    for (const run of result.soak!.runs) {
      const held = run.hold.samples.filter((x) => x.p99Us !== undefined);
      assert.ok(held.length >= 4, run.server);
      for (const x of held) {
        assert.ok(x.maxUs! >= x.p99Us! * 0.9 && x.sendLagMaxUs! >= 0 && x.late! >= 0, JSON.stringify(x));
        assert.ok(x.tcp && x.tcp.retransSegs >= 0 && x.tcp.timeouts >= 0, JSON.stringify(x.tcp));
      }
    }
    for (const [file, what] of [['soak.svg', 'RSS and descriptors'], ['soak-p99.svg', 'p99 over time']]) {
      const svg = fs.readFileSync(path.join(dir, file), 'utf8');
      for (const server of ['iomux-epoll', 'node']) assert.ok(svg.includes(server), `${server} in ${file} (${what})`);
    }
  });
});

describe('the soak load generator counts what a broken server does', function () {
  this.timeout(60_000);

  for (const kind of ['corrupt', 'close'] as const) {
    it(`churn against a server that ${kind === 'corrupt' ? 'flips a byte' : 'closes on the first data'}: every cycle an error, bytes lost`, async () => {
      const { server, port } = await brokenServer(kind);
      try {
        const out = await run(programPath('bench-soak-load'), ['--mode', 'churn', '--port', String(port), '--cycles', '40', '--parallel', '4']);
        assert.equal(out.code, 0, out.stderr);
        const done = doneLine<ChurnReport>(out.stdout);
        assert.equal(done.completed, 0);
        assert.equal(done.errors, 40);
        assert.equal(done.bytesSent, 40 * 64);
        assert.equal(done.bytesVerified, 0);
        assert.match(done.firstError, kind === 'corrupt' ? /differ/ : /closed|reset/i);
      } finally {
        server.close();
      }
    });
  }

  it('hold against a server that flips a byte: every connection fails once, nothing is verified', async () => {
    const { server, port } = await brokenServer('corrupt');
    try {
      const out = await run(programPath('bench-soak-load'), ['--mode', 'hold', '--port', String(port), '--connections', '20',
        '--interval-ms', '50', '--duration-ms', '300', '--report-ms', '100']);
      assert.equal(out.code, 0, out.stderr);
      const done = doneLine<HoldReport>(out.stdout);
      assert.equal(done.errors, 20);
      assert.equal(done.open, 0);
      assert.equal(done.bytesVerified, 0);
      assert.ok(done.bytesSent >= 20 * 64);
    } finally {
      server.close();
    }
  });
});
