/**
 * bench/cleanup.ts as a killed benchmark meets it: SIGTERM or SIGHUP (`kill PID`, a closed terminal)
 * ends Node without 'exit', yet what was registered — here a server-like process in a session of its
 * own, as bench/ftp-servers.ts starts them — is undone, and the process still ends by that signal.
 * (Ctrl-C is bench/suite.ts's: test/bench-interrupt.test.ts.)
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { skipUnless } from './skip';

const cleanupModule = path.resolve(__dirname, '..', 'bench', 'cleanup.js');

/** True once `pid` has ended (gone, or a zombie waiting for init to reap it). */
function ended(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

describe('bench: SIGTERM and SIGHUP still undo what a benchmark registered, then end the process by that signal', function () {
  this.timeout(30_000);

  for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
    it(`${signal}: the detached server is killed and the benchmark ends by ${signal}`, async function () {
      skipUnless(this, process.platform === 'linux', '/proc tells whether the server ended');
      const script = `
        const { spawn } = require('node:child_process');
        const { undoOnExit } = require(${JSON.stringify(cleanupModule)});
        // fd 3 is the test's pipe: its read end sees EOF once this process and the server have both ended.
        const server = spawn('sleep', ['600'], { detached: true, stdio: ['ignore', 'ignore', 'ignore', 3] });
        server.once('exit', undoOnExit(() => server.kill('SIGKILL')));
        setInterval(() => {}, 1000); // a benchmark at work
        console.log(server.pid);`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
      const bothEnded = new Promise((resolve) => (child.stdio[3] as Readable).on('close', resolve).resume());
      const server = await new Promise<number>((resolve) => child.stdout!.setEncoding('utf8').once('data', (line: string) => resolve(Number(line))));
      assert.ok(!ended(server), 'the server was not running before the signal');
      try {
        child.kill(signal);
        assert.equal(await exited, signal);
        await bothEnded; // without the undo, the server keeps the pipe open and this never comes
        assert.ok(ended(server), `the server ${server} outlived the benchmark's ${signal}`);
      } finally {
        if (!ended(server)) process.kill(server, 'SIGKILL');
      }
    });
  }
});
