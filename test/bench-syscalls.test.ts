/**
 * A system-call counter that ends by kill() — the benchmark's path after a failure (a load generator
 * that dies, a server that echoes nothing) — leaves nothing behind: no FIFO socket holding the process
 * open (`iomux bench` would never exit), no temporary directory. Each case runs in a child Node with
 * a private TMPDIR: the child must exit on its own, and the directory must be empty.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SyscallTool, syscallTool } from '../bench/syscalls';
import { requireTool } from './run-tool';
import { skipUnless } from './skip';

const syscallsModule = path.resolve(__dirname, '..', 'bench', 'syscalls.js');
/** No process has this id (above any pid_max): attaching fails, as against a server that died. */
const NO_SUCH_PID = 2 ** 31 - 1;

/** Starts a counter on `pid` in a child Node, kills it (twice) or reports the failed start, and resolves with what it printed once it exits. */
function inChild(tool: SyscallTool, pid: 'self' | number, tmp: string): Promise<{ code: number | null; stdout: string }> {
  const script = `
    const { startCounting } = require(${JSON.stringify(syscallsModule)});
    const pid = process.env.COUNT_PID === 'self' ? process.pid : Number(process.env.COUNT_PID);
    startCounting(pid, process.env.COUNT_TOOL).then((counter) => {
      counter.kill();
      counter.kill();
      console.log('killed');
    }, (err) => console.log('failed: ' + err.message));`;
  const child = spawn(process.execPath, ['-e', script], {
    env: { ...process.env, TMPDIR: tmp, COUNT_TOOL: tool, COUNT_PID: String(pid) }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout })));
}

describe('bench: a system-call counter ended by kill() or a failed start leaves nothing behind', function () {
  this.timeout(60_000);
  let tmp: string;

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-syscalls-test-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  for (const tool of ['perf', 'strace'] as const) {
    describe(tool, () => {
      before(function () {
        if (tool === 'strace') requireTool('strace', ['-V'], 'strace');
        const found = syscallTool(tool);
        skipUnless(this, !('skipped' in found), 'skipped' in found ? found.skipped : '');
      });

      it('kill() after counting started: the process exits by itself and the temporary directory is gone', async () => {
        const { code, stdout } = await inChild(tool, 'self', tmp);
        assert.equal(stdout.trim(), 'killed');
        assert.equal(code, 0);
        assert.deepEqual(fs.readdirSync(tmp), []);
      });

      it('a start that fails (no such process): the process exits by itself and the temporary directory is gone', async () => {
        const { code, stdout } = await inChild(tool, NO_SUCH_PID, tmp);
        assert.match(stdout, /^failed: /);
        assert.equal(code, 0);
        assert.deepEqual(fs.readdirSync(tmp), []);
      });
    });
  }
});
