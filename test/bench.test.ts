/**
 * Smoke test of the benchmark harness: every part runs through `iomux bench` with tiny parameters,
 * and the result files are checked for shape and sanity — correctness of the harness, not speed.
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { boundBy, CAPPED_SHARE, ECHO_SERVERS, echoCellCount, EchoOptions, EchoResult, isCapped } from '../bench/echo';
import { onPath } from '../bench/machine';
import { SCALING_MECHANISMS } from '../bench/scaling';
import { syscallTool } from '../bench/syscalls';
import { ioUringUnavailable } from '../lib/selectors/io-uring';
import type { SuiteResult } from '../bench/suite';

const cli = path.resolve(__dirname, '..', 'tools', 'cli.js');

function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, 'bench', '--no-progress', ...args], { maxBuffer: 16 * 2 ** 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Fields of one CSV line (quoted fields may hold commas). */
function csvFields(line: string): string[] {
  const fields = [''];
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    else if (ch === ',' && !quoted) fields.push('');
    else fields[fields.length - 1] += ch;
  }
  return fields;
}

const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as SuiteResult;

describe('iomux bench (smoke: every part with tiny parameters)', function () {
  this.timeout(120_000);
  let dir: string;
  let out: string;
  let result: SuiteResult;
  let run: { code: number; stdout: string; stderr: string };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-bench-test-'));
    out = path.join(dir, 'out');
    run = await bench([
      '--only', 'scaling,micro,echo,interest,files', '-n', '10,1100', '-a', '1,3', '--time', '5', '--micro-time', '20',
      '--servers', ECHO_SERVERS.join(','), '-c', '2', '-s', '100', '--warmup', '20', '--duration', '150', '--no-syscalls',
      '--file-size', '3', '--uploads', '4', '--upload-size', '1',
      '--repeat', '2', '--out', out, '--json', path.join(dir, 'copy', 'result.json'),
    ]);
    assert.equal(run.code, 0, run.stderr);
    result = readJson(path.join(out, 'results.json'));
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('records the machine and the exact parameters in results.json, and --json gets the same record', () => {
    assert.equal(result.tool, 'iomux bench');
    assert.ok(result.machine.cpuModel.length > 0);
    assert.ok(result.machine.cores >= 1);
    assert.match(result.machine.kernel, /\S/);
    assert.equal(result.machine.node, process.version);
    assert.deepEqual(result.parameters.parts, ['scaling', 'micro', 'echo', 'interest', 'files']);
    assert.deepEqual(result.parameters.interest?.connections, [2]);
    assert.deepEqual(result.parameters.files, { sizeMiB: 3, repeat: 2, uploads: 4, uploadMiB: 1 });
    assert.deepEqual(result.parameters.scaling?.n, [10, 1100]);
    assert.deepEqual(result.parameters.scaling?.a, [1, 3]);
    assert.equal(result.parameters.scaling?.repeat, 2);
    assert.deepEqual(result.parameters.echo?.connections, [2]);
    assert.deepEqual(result.parameters.echo?.sizes, [100]);
    assert.deepEqual(readJson(path.join(dir, 'copy', 'result.json')), result);
  });

  it('scaling: every mechanism has JS and C rows over every repetition, the wait inside the round', () => {
    const scaling = result.scaling!;
    for (const mechanism of SCALING_MECHANISMS) {
      for (const a of [1, 3]) {
        const row = scaling.rows.find((r) => r.mechanism === mechanism && r.n === 10 && r.a === a);
        assert.ok(row, `${mechanism} N=10 A=${a}`);
        for (const side of [row.js, row.c]) {
          assert.ok(side, `${mechanism} N=10 A=${a}: ${JSON.stringify(row.skipped)}`);
          assert.equal(side.roundNs.count, 2);
          assert.ok(side.rounds > 0);
          assert.ok(side.waitNs.median > 0 && side.waitNs.median < side.roundNs.median, `${mechanism}: wait within round`);
          assert.ok(side.roundNs.min <= side.roundNs.median && side.roundNs.median <= side.roundNs.max);
        }
        assert.equal(row.roundJsToC, row.js!.roundNs.median / row.c!.roundNs.median);
      }
    }
  });

  it('scaling: select past FD_SETSIZE is reported as skipped, never attempted; poll and epoll run there', () => {
    for (const a of [1, 3]) {
      const select = result.scaling!.rows.find((r) => r.mechanism === 'select' && r.n === 1100 && r.a === a)!;
      assert.equal(select.js, null);
      assert.equal(select.c, null);
      assert.match(select.skipped.js!, /FD_SETSIZE/);
      assert.match(select.skipped.c!, /FD_SETSIZE/);
      for (const mechanism of ['poll', 'epoll-lt', 'epoll-et']) {
        const row = result.scaling!.rows.find((r) => r.mechanism === mechanism && r.n === 1100 && r.a === a)!;
        assert.ok(row.js && row.c, `${mechanism} N=1100`);
      }
    }
    assert.match(run.stdout, /FD_SETSIZE/);
  });

  it('micro: every call has a JS and a C time and a crossing cost', () => {
    const micro = result.micro!;
    assert.ok(micro.rows.length >= 5);
    for (const row of micro.rows) {
      assert.ok(row.jsNs && row.jsNs.median > 0 && row.jsNs.count === 2, row.name);
      assert.ok(row.cNs && row.cNs.median > 0, row.name);
      assert.equal(row.overheadNs, row.jsNs.median - row.cNs.median);
    }
  });

  it('echo: every server echoed, and every byte sent came back verified', () => {
    const echo = result.echo!;
    assert.deepEqual(new Set(echo.rows.map((r) => r.server)), new Set(ECHO_SERVERS));
    for (const sample of echo.samples) {
      const r = sample.report;
      // Counted over warm-up and window: a 150 ms window on a loaded machine may see none, and that is not a fault.
      assert.ok(r.messagesTotal > 0, sample.server);
      assert.equal(r.bytesVerified, r.messagesTotal * 100, `${sample.server}: whole messages, all verified`);
      assert.ok(r.latencyUs.p50 > 0 && r.latencyUs.p50 <= r.latencyUs.p99, `${sample.server}: ${JSON.stringify(r.latencyUs)}`);
      assert.ok(r.loadgenCpu.share > 0, `${sample.server}: load generator CPU ${JSON.stringify(r.loadgenCpu)}`);
      assert.ok(r.serverCpuNs >= 0, `${sample.server}: server CPU read from /proc`);
    }
    for (const row of echo.rows) {
      assert.equal(row.messagesPerSec.count, 2, row.server);
      assert.ok(row.serverCpuShare !== null && row.serverCpuShare >= 0, `${row.server}: server CPU share`);
      // Only iomux servers report their readiness events; every message needs at least one.
      if (row.server.startsWith('iomux-')) {
        const stats = JSON.stringify(echo.samples.filter((x) => x.server === row.server).map((x) => x.serverStats));
        assert.ok(row.eventsPerMessage !== null && row.eventsPerMessage >= 0.9, `${row.server}: events per message from ${stats}`);
      }
      else assert.equal(row.eventsPerMessage, null);
    }
    for (const row of echo.rows) {
      assert.equal(row.boundBy, boundBy(row.serverCpuShare, row.loadgenCpuShare), `${row.server}: bound by`);
    }
    assert.equal(echo.rows.find((r) => r.server === 'c')!.toCeiling, 1);
    assert.equal(echo.rows.find((r) => r.server === 'node')!.toNode, 1);
    assert.ok(echo.rows.every((r) => r.toCeiling !== null && r.toNode !== null));
  });

  it('echo: a side at 90 % of its core or more is the bottleneck; a busy load generator marks the rate as capped', () => {
    assert.equal(CAPPED_SHARE, 0.9);
    assert.equal(boundBy(0.99, 0.5), 'server');
    assert.equal(boundBy(0.5, 0.95), 'load generator');
    assert.equal(boundBy(0.99, 0.97), 'both');
    assert.equal(boundBy(0.5, 0.5), 'latency');
    assert.equal(boundBy(null, 0.5), 'latency');
    assert.deepEqual((['server', 'load generator', 'both', 'latency'] as const).map((b) => isCapped({ boundBy: b })), [false, true, true, false]);
    const markdown = fs.readFileSync(path.join(out, 'results.md'), 'utf8');
    assert.match(markdown, /\| bound by \|/);
    for (const row of result.echo!.rows) {
      // The Markdown row of a capped cell says so next to its rate.
      const line = markdown.split('\n').find((l) => l.startsWith(`| ${row.server} | ${row.connections} |`))!;
      assert.equal(line.includes(' capped |'), isCapped(row), line);
    }
  });

  it('echo: select is left out where the connections would not fit below FD_SETSIZE', () => {
    const options: EchoOptions = {
      servers: ['c', 'iomux-select'], connections: [10, 1000], sizes: [64], depth: 1, repeat: 1, warmupMs: 0, durationMs: 1,
      pin: false, syscalls: false, syscallConnections: 1, syscallSize: 1, syscallDurationMs: 1,
    };
    assert.equal(echoCellCount(options), 3); // c twice, select only at C=10
  });

  it('interest: every server at every C with one message in flight, the queued ones deep as well, all verified', () => {
    const interest = result.interest!;
    const cells = interest.rows.map((r) => `${r.server} C=${r.connections} D=${r.depth}`).sort();
    assert.deepEqual(cells, [
      'iomux-epoll C=2 D=1', 'iomux-epoll-et C=2 D=1', 'iomux-epoll-et-queued C=2 D=1', 'iomux-epoll-et-queued C=2 D=8',
      'iomux-epoll-queued C=2 D=1', 'iomux-epoll-queued C=2 D=8', 'iomux-epoll-queued-unbatched C=2 D=1',
      'iomux-epoll-queued-unbatched C=2 D=8',
    ]);
    for (const row of interest.rows) {
      assert.equal(row.messagesPerSec.count, 2, row.server);
      assert.ok(row.messagesPerSec.median > 0);
      // One event per message edge-triggered or direct, two for the level-triggered strict separation (D = 1).
      assert.ok(row.eventsPerMessage !== null && row.eventsPerMessage > 0, `${row.server}: events per message`);
      assert.equal(row.epollCtlPerMessage, null, '--no-syscalls: nothing counted');
    }
    assert.ok(result.targets.some((t) => /iomux-epoll-et-queued CPU per msg/.test(t.target)));
  });

  it('files: iomux, Node\'s pipeline and the C pipe each moved the file both ways, every repetition; every upload verified', () => {
    const files = result.fileTransfer!;
    assert.equal(files.samples.length, 2 * 7);
    for (const sample of files.samples) {
      assert.equal(sample.bytes, 3 * 1024 * 1024);
      assert.ok(sample.seconds > 0, `${sample.impl} ${sample.direction}`);
      assert.equal(sample.commandSeconds !== null, sample.impl === 'iomux');
      assert.ok(sample.serverCpuSeconds >= 0, `${sample.impl} ${sample.direction}: server CPU`);
    }
    const keys = files.rows.map((r) => `${r.impl} ${r.direction}`);
    assert.deepEqual(keys, ['iomux put', 'node put', 'c put', 'iomux get', 'node get', 'c get', 'iomux get-cold']);
    for (const row of files.rows) {
      assert.equal(row.mbPerSec.count, 2);
      assert.ok(row.toNode !== null && row.toC !== null);
    }
    assert.equal(files.rows.find((r) => r.impl === 'node' && r.direction === 'get')!.toNode, 1);
    assert.equal(files.rows.find((r) => r.impl === 'c' && r.direction === 'put')!.toC, 1);
    assert.deepEqual(files.load.map((l) => [l.uploads, l.verified, l.bytes]), [[4, 4, 4 * 1024 * 1024], [4, 4, 4 * 1024 * 1024]]);
    for (const m of files.memory) assert.ok(m.baselineBytes > 0 && m.peakBytes >= m.baselineBytes && m.peakAfterLoadBytes >= m.peakBytes);
    assert.match(run.stdout, /iomux files put MB\/s \/ Node stream\.pipeline \(3 MiB\)/);
    assert.match(run.stdout, /iomux files serve peak RSS .* MiB/);
  });

  it('writes CSV files that carry the machine and parameters, one line per row', () => {
    const lines = (name: string) => fs.readFileSync(path.join(out, name), 'utf8').trim().split('\n');
    for (const [name, rows] of [['scaling.csv', result.scaling!.rows.length * 2], ['micro.csv', result.micro!.rows.length],
      ['echo.csv', result.echo!.rows.length], ['interest.csv', result.interest!.rows.length], ['files.csv', result.fileTransfer!.rows.length],
      ['files-memory.csv', 2]] as const) {
      const text = lines(name);
      assert.match(text[0], /^# machine: \{/);
      assert.match(text[1], /^# parameters: \{/);
      const data = text.filter((l) => !l.startsWith('#'));
      assert.equal(data.length, rows + 1, name);
      const width = csvFields(data[0]).length;
      assert.ok(width > 3);
      assert.ok(data.every((l) => csvFields(l).length === width), `${name}: rectangular`);
    }
  });

  it('draws the SVG charts with every series named', () => {
    const scaling = fs.readFileSync(path.join(out, 'scaling.svg'), 'utf8');
    assert.match(scaling, /^<svg/);
    for (const name of [...SCALING_MECHANISMS, 'iomux (JS)']) assert.ok(scaling.includes(name), name);
    for (const file of ['echo-throughput.svg', 'echo-cpu.svg']) {
      const svg = fs.readFileSync(path.join(out, file), 'utf8');
      assert.match(svg, /^<svg/);
      for (const server of ECHO_SERVERS) assert.ok(svg.includes(server), `${file}: ${server}`);
    }
  });

  it('--from redraws a saved run without measuring: the same tables, and no new samples', async () => {
    const again = path.join(dir, 'again');
    const redraw = await bench(['--from', path.join(out, 'results.json'), '--out', again, '--no-charts']);
    assert.equal(redraw.code, 0, redraw.stderr);
    assert.equal(fs.readFileSync(path.join(again, 'results.md'), 'utf8'), fs.readFileSync(path.join(out, 'results.md'), 'utf8'));
    assert.deepEqual(readJson(path.join(again, 'results.json')).echo!.samples, result.echo!.samples);
  });

  it('prints tables and the target checks, and writes the same tables as Markdown', () => {
    const markdown = fs.readFileSync(path.join(out, 'results.md'), 'utf8');
    for (const heading of ['Scaling', 'Micro-benchmarks', 'Echo: server CPU per message', 'Files: one 3 MiB file', 'Files: the server\'s memory', 'Targets']) {
      assert.ok(run.stdout.includes(heading), heading);
      assert.ok(markdown.includes(`**${heading}`), `results.md: ${heading}`);
    }
    assert.match(run.stdout, /iomux-epoll msgs\/s \/ Node net/);
    assert.match(run.stdout, /iomux-epoll-attached CPU per msg \/ iomux-epoll \(blocking\) \(C=1, S=64\)/);
    assert.match(run.stdout, /iomux-epoll-attached p50 latency \/ Node net \(C=1, S=64\)/);
    assert.match(markdown, new RegExp(`Node ${process.version}`));
    assert.match(markdown, /^\| mechanism \| N \| A \|/m);
  });
});

describe('iomux bench: system calls per message', function () {
  this.timeout(90_000);

  /** Runs the echo part's system-call count for c, c-uring and iomux-epoll-queued with `tool` (or the default). */
  async function counted(tool?: 'perf' | 'strace'): Promise<EchoResult> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-bench-test-'));
    try {
      const run = await bench(['--echo', '--servers', 'c,c-uring,iomux-epoll-queued', '-c', '2', '--warmup', '10', '--duration', '100',
        '--repeat', '1', '--syscall-duration', '600', '--no-charts', '--out', dir, ...(tool ? ['--syscall-tool', tool] : [])]);
      assert.equal(run.code, 0, run.stderr);
      return readJson(path.join(dir, 'results.json')).echo!;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  function checkCounts(echo: EchoResult, tool: 'perf' | 'strace'): void {
    const servers = ioUringUnavailable() ? ['c', 'iomux-epoll-queued'] : ['c', 'c-uring', 'iomux-epoll-queued'];
    assert.deepEqual(echo.syscalls.map((s) => s.server), servers);
    for (const s of echo.syscalls) {
      assert.equal(s.tool, tool);
      const per = (...names: string[]) => names.reduce((sum, n) => sum + (s.perMessage[n] ?? 0), 0);
      if (s.server === 'c-uring') {
        // Completion: the reads and sends happen inside io_uring_enter, never as calls of their own.
        assert.ok(per('io_uring_enter') > 0, `${s.server}: ${JSON.stringify(s.perMessage)}`);
        assert.equal(per('recvfrom', 'read', 'recvmsg', 'sendto', 'write', 'writev', 'sendmsg'), 0);
        continue;
      }
      // One message in flight per connection: the server can only read and send each message on its own.
      assert.ok(per('recvfrom', 'read', 'recvmsg') >= 0.9, `${s.server} reads per message: ${JSON.stringify(s.perMessage)}`);
      assert.ok(per('sendto', 'write', 'writev', 'sendmsg') >= 0.9, `${s.server} sends per message`);
      assert.ok(s.totalPerMessage >= per('recvfrom', 'sendto'));
    }
    // The queued strategy adds and removes write interest around every reply.
    assert.ok((echo.syscalls.find((s) => s.server === 'iomux-epoll-queued')!.perMessage.epoll_ctl ?? 0) >= 1);
    assert.ok((echo.syscalls.find((s) => s.server === 'c')!.perMessage.epoll_ctl ?? 0) < 0.5);
  }

  it('counts them with perf\'s syscall tracepoints by default, strace where perf cannot, or says why neither could', async () => {
    const echo = await counted();
    const tool = syscallTool();
    if ('skipped' in tool) {
      assert.deepEqual(echo.syscalls, []);
      assert.equal(echo.syscallsSkipped, tool.skipped);
      return;
    }
    checkCounts(echo, tool.tool);
  });

  it('counts them with strace when asked (--syscall-tool strace), or says it is not installed', async () => {
    const echo = await counted('strace');
    if (!onPath('strace')) {
      assert.deepEqual(echo.syscalls, []);
      assert.match(echo.syscallsSkipped!, /strace is not installed/);
      return;
    }
    checkCounts(echo, 'strace');
  });

  it('rejects bad flags with the flag named, before measuring anything', async () => {
    const unknown = await bench(['--mechanisms', 'kqueue']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /kqueue/);
    const zero = await bench(['-n', '0']);
    assert.notEqual(zero.code, 0);
    assert.match(zero.stderr, /N must be an integer/);
  });
});
