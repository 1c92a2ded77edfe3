/**
 * `iomux bench` as a user meets it: the first line names the folder the results go to; with stderr not a
 * terminal, progress is one plain line per cell; and Ctrl-C (SIGINT to the process group, as a terminal sends
 * it) while a part runs still prints and writes what the parts before it measured, then exits with 130.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { descendants } from '../bench/descendants';

const cli = path.resolve(__dirname, '..', 'tools', 'cli.js');

describe('bench: first line, plain progress lines, partial results on Ctrl-C', function () {
  this.timeout(120_000);
  let dir: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-bench-interrupt-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('finds the processes a run started and the ones they started, from /proc', async () => {
    const shell = spawn('sh', ['-c', 'sleep 60 & echo $!; wait'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const exited = new Promise((resolve) => shell.on('exit', resolve));
    const grandchild = await new Promise<number>((resolve) => shell.stdout.setEncoding('utf8').once('data', (line: string) => resolve(Number(line))));
    const found = descendants();
    process.kill(grandchild, 'SIGTERM');
    await exited;
    assert.ok(found.includes(shell.pid!), `sh ${shell.pid} not among ${found.join(' ')}`);
    assert.ok(found.indexOf(grandchild) > found.indexOf(shell.pid!), `its sleep ${grandchild} not found after it: ${found.join(' ')}`);
  });

  it('SIGINT during the echo part: scaling\'s results are printed and written, results.json says where it stopped, exit 130', async () => {
    const out = path.join(dir, 'results');
    // detached: its own process group, so the signal reaches the load generators too, as from a terminal.
    const child = spawn(process.execPath, [cli, 'bench', '--only', 'scaling,echo', '--no-charts', '--no-syscalls', '--no-pin',
      '-n', '10', '-a', '1', '--time', '20', '--repeat', '1', '--servers', 'c', '-c', '1', '-s', '64', '--warmup', '0', '--duration', '60000',
      '--out', out], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
        // The echo part's first cell has started: scaling is done.
        if (/\] echo: /.test(stderr)) resolve();
      });
      child.on('exit', () => reject(new Error(`bench ended before the echo part: ${stderr}`)));
    });
    process.kill(-child.pid!, 'SIGINT');
    assert.equal(await exited, 130, stderr);

    assert.equal(stdout.split('\n')[0], `iomux bench: results go to ${out} (--out to change)`);
    assert.match(stderr, /^\[ *1\/\d+ +0:\d\d\] scaling: /m, 'no plain progress line for the first cell');
    assert.match(stdout, /interrupted during echo: the parts before it follow/);
    assert.match(stdout, /Wrote .*results\.json \(interrupted after/);
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as {
      interrupted?: { during: string }; scaling: { rows: unknown[] } | null; echo: unknown;
    };
    assert.deepEqual(saved.interrupted, { during: 'echo' });
    assert.ok(saved.scaling && saved.scaling.rows.length > 0, 'scaling\'s rows are missing');
    assert.equal(saved.echo, null);
    assert.ok(fs.existsSync(path.join(out, 'results.md')));
  });
});
