/**
 * Smoke test of the FTP benchmark: `iomux bench --ftp` with tiny parameters runs every server
 * (iomux on epoll, poll and select, pyftpdlib, vsftpd, ftp-srv) through every ftpbench step and the
 * whole-file transfers with every client (curl, the C client, ftplib), and the result files have the
 * shape the docs describe — correctness of the harness, not speed.
 */
import * as assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FTP_SERVERS, FTP_STEPS, TRANSFER_SERVERS } from '../bench/ftp';
import { TRANSFER_CLIENTS } from '../bench/ftp-transfers';
import type { SuiteResult } from '../bench/suite';

const cli = path.resolve(__dirname, '..', 'tools', 'cli.js');

describe('iomux bench --ftp (smoke: every server, every step, tiny parameters)', function () {
  this.timeout(120_000);
  let dir: string;
  let result: SuiteResult;

  before(async () => {
    if (spawnSync('/usr/bin/python3', ['-c', 'import pyftpdlib'], { stdio: 'ignore' }).status !== 0) {
      throw new Error('the FTP benchmark compares with pyftpdlib: apt-get install python3-pyftpdlib (.ci/run installs it)');
    }
    if (!fs.existsSync('/usr/sbin/vsftpd')) throw new Error('the FTP benchmark compares with vsftpd: apt-get install vsftpd (.ci/run installs it)');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-bench-ftp-'));
    // 40 clients: more than `iomux ftp serve`'s default 32 sessions per user and per address, which the
    // benchmark must lift (its N clients are one user from one address).
    const run = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [cli, 'bench', '--ftp', '--no-progress', '--ftp-clients', '40', '--ftp-file-size', '65536',
        '--ftp-transfer-size', '1048576', '--ftp-seconds', '0.1', '--ftp-whole-size', '1048576', '--ftp-whole-rounds', '1', '--out', dir], { maxBuffer: 16 * 2 ** 20 }, (error, _stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stderr });
      });
    });
    assert.equal(run.code, 0, run.stderr);
    result = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as SuiteResult;
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('runs only the FTP part, with the parameters asked for', () => {
    assert.deepEqual(result.parameters.parts, ['ftp']);
    assert.equal(result.parameters.ftp?.clients, 40);
    assert.equal(result.scaling, null);
  });

  it('every server went through every step, with a result, CPU time and memory', () => {
    const ftp = result.ftp!;
    assert.deepEqual(ftp.skips, []);
    assert.deepEqual(ftp.runs.map((r) => r.server), [...FTP_SERVERS]);
    for (const run of ftp.runs) {
      assert.deepEqual(run.steps.map((s) => s.step), [...FTP_STEPS]);
      for (const step of run.steps) {
        assert.ok(step.seconds > 0, `${run.server} ${step.step}: seconds`);
        assert.ok(step.serverCpuSec >= 0 && step.rssMiB > 1, `${run.server} ${step.step}: cpu and rss`);
        if (['stor', 'retr', 'stor-idle', 'retr-idle'].includes(step.step)) {
          assert.ok(step.mbPerSec! > 0 && step.bytes! >= 1048576, `${run.server} ${step.step}: a whole transfer at least`);
        }
      }
      assert.ok(run.rssStartMiB > 1);
    }
  });

  it('every whole-file cell (server × client × direction) moved the whole file and measured the server', () => {
    const whole = result.ftp!.whole!;
    assert.deepEqual(whole.skips, []);
    assert.equal(whole.size, 1048576);
    assert.equal(whole.cells.length, TRANSFER_SERVERS.length * TRANSFER_CLIENTS.length * 2);
    for (const server of TRANSFER_SERVERS) {
      for (const client of TRANSFER_CLIENTS) {
        for (const direction of ['retr', 'stor'] as const) {
          const cell = whole.cells.find((c) => c.server === server && c.client === client && c.direction === direction);
          assert.ok(cell, `${server} ${client} ${direction}`);
          assert.equal(cell.mbPerSec.count, 1);
          assert.ok(cell.mbPerSec.median > 0 && cell.cpuMsPerMB.median >= 0, `${server} ${client} ${direction}: rate and CPU`);
        }
      }
    }
  });

  it('writes the tables with the ratios, the targets, the CSV and the chart', () => {
    const markdown = fs.readFileSync(path.join(dir, 'results.md'), 'utf8');
    assert.match(markdown, /\*\*FTP \(ftpbench's steps, N=40\)/);
    assert.match(markdown, /\| 40 clients connect \+ login \(s\) \|/);
    assert.match(markdown, /FTP retr: iomux-epoll MB\/s \/ pyftpdlib/);
    assert.match(markdown, /FTP RSS per idle client: iomux-epoll \/ pyftpdlib/);
    assert.match(markdown, /\| RETR, ftplib 64 KiB \(MB\/s\) \|/);
    assert.match(markdown, /iomux-epoll \/ vsftpd/);
    const whole = fs.readFileSync(path.join(dir, 'ftp-whole.csv'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.equal(whole.length, 1 + TRANSFER_SERVERS.length * TRANSFER_CLIENTS.length * 2);
    const csv = fs.readFileSync(path.join(dir, 'ftp.csv'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.equal(csv[0], 'server,step,clients,mb_per_sec,seconds,bytes,server_cpu_sec,rss_mib');
    assert.equal(csv.length, 1 + FTP_SERVERS.length * (FTP_STEPS.length + 1));
    for (const chart of ['ftp.svg', 'ftp-cpu.svg']) {
      const svg = fs.readFileSync(path.join(dir, chart), 'utf8');
      for (const server of FTP_SERVERS) assert.ok(svg.includes(server), `${server} in ${chart}`);
    }
  });
});
