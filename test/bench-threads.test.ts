/**
 * Smoke test of the benchmark's threads part (`iomux bench --threads`) with tiny parameters, and of
 * the cost table's measurements: the harness's correctness, never speed.
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCosts } from '../bench/costs';
import type { SuiteResult } from '../bench/suite';
import { maxOverMin, serverName, threadCells, THREADS_SERVER_KINDS } from '../bench/threads';
import { threadsPreset } from '../bench/options';

const cli = path.resolve(__dirname, '..', 'tools', 'cli.js');

describe('iomux bench --threads (smoke: tiny parameters)', function () {
  this.timeout(180_000);
  let dir: string;
  let result: SuiteResult;
  let stdout: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-bench-threads-'));
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [cli, 'bench', '--threads', '--no-costs', '--no-progress', '--no-charts', '-c', '3', '--warmup', '20',
        '--duration', '150', '--repeat', '1', '--out', dir], { maxBuffer: 16 * 2 ** 20 }, (error, out, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout: out, stderr });
      });
    });
    assert.equal(run.code, 0, run.stderr);
    stdout = run.stdout;
    result = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as SuiteResult;
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('runs only the threads part, every server at 1 and 2 threads, and every byte came back', () => {
    assert.deepEqual(result.parameters.parts, ['threads']);
    const threads = result.threads!;
    const expected = threadCells(threads.options).map(({ kind, threads: n }) => serverName(kind, n));
    assert.deepEqual(new Set(threads.rows.map((r) => r.server)), new Set(expected));
    for (const kind of THREADS_SERVER_KINDS) assert.ok(threads.rows.some((r) => r.kind === kind), kind);
    for (const s of threads.samples) {
      // Counted over warm-up and window: a 150 ms window on a loaded machine may see none, and that is not a fault.
      assert.ok(s.messagesTotal > 0, s.server);
      assert.equal(s.bytesVerified, s.messagesTotal * threads.options.size, `${s.server}: whole messages, all verified`);
      assert.ok(s.serverCpuNsPerMessage >= 0, `${s.server}: server CPU read from /proc`);
    }
  });

  it('per thread: one CPU share per serving thread (the cluster adds its primary), and the connections of each', () => {
    for (const row of result.threads!.rows) {
      const expectedTasks = row.kind === 'node-cluster' ? row.threads + 1 : row.threads;
      assert.equal(row.taskShares.length, expectedTasks, `${row.server}: ${JSON.stringify(row.taskShares)}`);
      assert.ok(row.taskShares.every((x) => x >= 0), row.server);
      assert.equal(row.connectionsPerThread.length, row.threads, `${row.server}: ${JSON.stringify(row.connectionsPerThread)}`);
      assert.equal(row.connectionsPerThread.reduce((a, b) => a + b, 0), 3, `${row.server}: every connection counted once`);
    }
  });

  it('prints the tables and the scaling targets, and writes threads.csv', () => {
    for (const heading of ['Threads: echo on 1 and N threads', 'Threads: how evenly', 'Targets']) assert.ok(stdout.includes(heading), heading);
    assert.match(stdout, /iomux-2-reuseport CPU per msg \/ iomux-1 \(C=3\)/);
    assert.match(stdout, /iomux 1 → 2 msgs\/s \/ C server 1 → 2/);
    assert.match(stdout, /msgs\/s \/ node-cluster-2/);
    const csv = fs.readFileSync(path.join(dir, 'threads.csv'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.equal(csv.length, result.threads!.rows.length + 1);
  });

  it('max/min: 1 for one thread, null when a thread had nothing', () => {
    assert.equal(maxOverMin([7]), 1);
    assert.equal(maxOverMin([600, 400]), 1.5);
    assert.equal(maxOverMin([5, 0]), null);
    assert.equal(maxOverMin([]), null);
  });

  it('the default suite runs a short threads part; --threads the complete one', () => {
    const short = threadsPreset(false);
    const complete = threadsPreset(true);
    assert.ok(threadCells(short).length * short.connections.length * short.repeat < threadCells(complete).length * complete.connections.length * complete.repeat);
    assert.deepEqual(complete.connections, [100, 1000]);
    assert.deepEqual(complete.counts, [1, 2]);
  });
});

describe('bench/costs: threads or a multiplexer (tiny parameters)', function () {
  this.timeout(120_000);

  it('measures worker start-up, connect to first echo three ways, and memory per connection', async () => {
    const costs = await runCosts({ reactorConnections: 20, threadConnections: 2, samples: 5, startups: 2 });
    assert.equal(costs.workerStartupMs.count, 2);
    assert.ok(costs.workerStartupMs.median > 0);
    assert.equal(costs.emptyWorkerStartupMs.count, 2);
    assert.equal(costs.coldConnectMs.count, 2);
    assert.equal(costs.warmConnectUs.count, 5);
    assert.equal(costs.reactorConnectUs.count, 5);
    assert.ok(Number.isFinite(costs.workerBytesPerConnection));
    assert.ok(Number.isFinite(costs.reactorBytesPerConnection));
  });
});
