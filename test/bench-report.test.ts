/**
 * What a person opens after a run: report.html, checked in a real browser (Debian's Chromium, headless)
 * — it draws every chart, says nothing wrong on the console, fetches nothing — and `iomux bench
 * --compare` on two real saved runs: the same rows side by side, B / A, changes beyond noise marked.
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compareRuns, comparisonTables } from '../bench/compare';
import type { SuiteResult } from '../bench/suite';
import { figureMarks, openInChromium } from './browser';

const cli = path.resolve(__dirname, '..', 'tools', 'cli.js');

function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, 'bench', '--no-progress', ...args], { maxBuffer: 16 * 2 ** 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as SuiteResult;

/** A small real run: two scaling mechanisms and four echo servers (Node's for the C = 1 targets), two repetitions each, system calls counted. */
const SMALL_RUN = ['--only', 'scaling,echo', '-n', '10,100', '-a', '1', '--time', '5', '-m', 'poll,epoll-lt',
  '--servers', 'c,c-uring,node,iomux-epoll', '-c', '1,2', '-s', '64', '--warmup', '20', '--duration', '150', '--repeat', '2',
  '--syscall-duration', '300'];

describe('iomux bench: report.html and --compare', function () {
  this.timeout(180_000);
  let dir: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-bench-report-'));
    for (const run of ['a', 'b']) {
      const result = await bench([...SMALL_RUN, '--out', path.join(dir, run)]);
      assert.equal(result.code, 0, result.stderr);
    }
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes report.html beside results.json, and lists it among the files written', () => {
    const result = readJson(path.join(dir, 'a', 'results.json'));
    assert.ok(result.files.some((f) => f.endsWith('report.html')), JSON.stringify(result.files));
    const html = fs.readFileSync(path.join(dir, 'a', 'report.html'), 'utf8');
    assert.match(html, /^<!DOCTYPE html>/);
    // Self-contained: no script, no stylesheet or image fetched from anywhere.
    assert.doesNotMatch(html, /<script|<link|<img|<iframe|@import/i);
    assert.match(html, /Content-Security-Policy/);
  });

  it('opens in headless Chromium with every chart drawn, no console error, and nothing fetched', async () => {
    const opened = await openInChromium(path.join(dir, 'a', 'report.html'));
    try {
      const figures = await figureMarks(opened.page);
      const captions = figures.map((f) => f.caption);
      for (const expected of [/^Microseconds per round/, /^Echo: the server's CPU time/, /^Echo: messages per second/, /^System calls per echoed message/]) {
        assert.ok(captions.some((c) => expected.test(c)), `${expected} among ${JSON.stringify(captions)}`);
      }
      for (const f of figures) {
        assert.ok(f.width > 300 && f.height > 150, `${f.caption}: drawn ${f.width}×${f.height}`);
        // Not blank: lines, points, bars and rules with boxes of their own (a series per server or mechanism).
        assert.ok(f.drawn >= 4, `${f.caption}: ${f.drawn} of ${f.marks} marks have a size`);
      }
      assert.deepEqual(opened.errors, []);
      assert.deepEqual(opened.requests, [`file://${path.join(dir, 'a', 'report.html')}`]);
      const text = await opened.page.evaluate('document.body.innerText') as string;
      for (const heading of ['Machine and run', 'Scaling: the cost of a wait', 'Echo: CPU per message', 'Targets met and missed', 'Parameters', 'What this means']) {
        assert.ok(text.includes(heading), heading);
      }
      // A target table row that was measured says yes or NO; the page marks which.
      const verdicts = await opened.page.evaluate('[...document.querySelectorAll("td.good, td.bad")].map((td) => td.textContent)') as string[];
      assert.ok(verdicts.length > 0 && verdicts.every((v) => v === 'yes' || v === 'NO'), JSON.stringify(verdicts));
      const png = await opened.page.screenshot({ fullPage: true });
      assert.ok(png.length > 20_000, `a full-page screenshot of ${png.length} bytes`);
    } finally {
      await opened.close();
    }
  });

  it('--compare prints both runs\' rows side by side with B / A, and writes compare.md and compare.html', async () => {
    const out = path.join(dir, 'compare');
    const run = await bench(['--compare', path.join(dir, 'a', 'results.json'), path.join(dir, 'b', 'results.json'), '--out', out]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^A: .*results\.json/m);
    assert.match(run.stdout, /metrics in both runs: \d+ better and \d+ worse beyond the runs' own noise/);
    for (const cell of ['iomux-epoll C=2 S=64', 'c-uring C=1 S=64', 'epoll-lt N=100 A=1']) assert.ok(run.stdout.includes(cell), cell);
    const md = fs.readFileSync(path.join(out, 'compare.md'), 'utf8');
    assert.match(md, /\| cell \| metric \| A \| B \| B \/ A \| change \|/);
    const opened = await openInChromium(path.join(out, 'compare.html'));
    try {
      assert.deepEqual(opened.errors, []);
      const rows = await opened.page.evaluate('document.querySelectorAll("tbody tr").length') as number;
      const a = readJson(path.join(dir, 'a', 'results.json'));
      assert.equal(rows, compareRuns({ file: 'a', run: a }, { file: 'b', run: readJson(path.join(dir, 'b', 'results.json')) }).rows.length);
    } finally {
      await opened.close();
    }
  });

  it('marks a change only where the two runs\' min–max ranges do not overlap', () => {
    const a = readJson(path.join(dir, 'a', 'results.json'));
    const b = readJson(path.join(dir, 'b', 'results.json'));
    // The same run against itself: every range overlaps its own.
    const same = compareRuns({ file: 'a', run: a }, { file: 'a', run: a });
    assert.ok(same.rows.length > 0);
    assert.ok(same.rows.every((r) => r.change === 'within noise' || r.change === 'noise unknown'));
    // Run B with one cell's CPU per message made ten times dearer, every repetition: worse, and nothing else moved by it.
    const row = b.echo!.rows.find((r) => r.server === 'iomux-epoll' && r.connections === 2)!;
    for (const key of ['median', 'min', 'max'] as const) row.serverCpuNsPerMessage[key] = a.echo!.rows.find((r) => r.server === 'iomux-epoll' && r.connections === 2)!.serverCpuNsPerMessage.max * 10 * (key === 'max' ? 1.1 : 1);
    const doctored = compareRuns({ file: 'a', run: a }, { file: 'b', run: b });
    const cpu = doctored.rows.find((r) => r.cell === 'iomux-epoll C=2 S=64' && r.metric === 'CPU µs/msg')!;
    assert.equal(cpu.change, 'worse');
    assert.ok(cpu.ratio! > 5);
    // System calls are counted once per run: no repetitions, so no verdict either way.
    assert.ok(doctored.rows.filter((r) => r.metric === 'system calls/msg').every((r) => r.change === 'noise unknown'));
    const table = comparisonTables(doctored).find((t) => t.title.startsWith('echo'))!;
    assert.ok(table.rows.some((r) => r[0] === 'iomux-epoll C=2 S=64' && r[1] === 'CPU µs/msg' && r[5] === 'worse'));
  });
});
