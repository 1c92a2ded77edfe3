import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Command } from 'commander';
import { register } from '../tools/commands/trace';
import type { Report } from '../tools/lab/model';
import { SCENARIOS } from '../tools/lab/registry';

const CLI = path.resolve(__dirname, '..', 'tools', 'cli.js');

function iomux(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 15000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('lab: iomux trace (the command)', () => {
  it('--list prints every scenario on one line, name first', () => {
    const { status, stdout } = iomux('trace', '--list');
    assert.equal(status, 0);
    const lines = stdout.trimEnd().split('\n');
    assert.equal(lines.length, SCENARIOS.length);
    SCENARIOS.forEach((s, i) => assert.match(lines[i], new RegExp(`^\\s*${s.name}\\s+\\S`)));
  });

  it('partial-read prints a timeline per mechanism, the stall in words, and a side-by-side summary', () => {
    const { status, stdout } = iomux('trace', 'partial-read', '--stall-ms', '20');
    assert.equal(status, 0);
    for (const m of ['select', 'poll', 'epoll-lt', 'epoll-et', 'epoll-oneshot']) assert.match(stdout, new RegExp(`^── ${m} ── `, 'm'));
    assert.match(stdout, /time ms\s+fd\s+reported\s+action\s+bytes/);
    assert.match(stdout, /recv\(1024\) → 1024 bytes; 9216 unread/);
    assert.match(stdout, /STALLED with 9216 bytes unread/);
    assert.match(stdout, /^ {2}epoll-et\s+1\s+1024\s+9216\s+yes$/m);
    assert.match(stdout, /^ {2}epoll-lt\s+10\s+10240\s+0\s+no$/m);
    assert.match(stdout, /What this shows/);
  });

  it('--json carries, per mechanism, wake-ups, bytes read, bytes left and whether it stalled', () => {
    const { status, stdout } = iomux('trace', 'partial-read', '--json', '--mechanism', 'epoll-lt,epoll-et', '--stall-ms', '20');
    assert.equal(status, 0);
    const report = JSON.parse(stdout) as Report;
    assert.equal(report.scenario, 'partial-read');
    assert.deepEqual(report.parameters, { bytes: 10240, chunk: 1024, drain: false, rearm: false, stallMs: 20 });
    const byLabel = Object.fromEntries(report.traces.map((t) => [t.label, t.summary]));
    assert.deepEqual(Object.keys(byLabel), ['epoll-lt', 'epoll-et']);
    assert.deepEqual(
      [byLabel['epoll-et'].wakeups, byLabel['epoll-et'].bytesRead, byLabel['epoll-et'].bytesLeft, byLabel['epoll-et'].stalled],
      [1, 1024, 9216, true]);
    assert.deepEqual(
      [byLabel['epoll-lt'].wakeups, byLabel['epoll-lt'].bytesRead, byLabel['epoll-lt'].bytesLeft, byLabel['epoll-lt'].stalled],
      [10, 10240, 0, false]);
  });

  it('refuses an unknown scenario, a parameter the scenario does not take, a non-number and a missing scenario', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['trace', 'no-such-scenario'], /Unknown scenario "no-such-scenario"/],
      [['trace', 'partial-read', '--workers', '3'], /partial-read does not take --workers/],
      [['trace', 'partial-read', '--bytes', 'lots'], /expected a whole number/],
      [['trace', 'partial-read', '--mechanism', 'kqueue'], /Unknown mechanism "kqueue"/],
      [['trace'], /which scenario\?/],
    ];
    for (const [args, message] of cases) {
      // In-process: settings set before register() are inherited by the subcommand.
      const program = new Command('iomux').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
      register(program);
      await assert.rejects(program.parseAsync(args, { from: 'user' }), message, args.join(' '));
    }
  });
});
