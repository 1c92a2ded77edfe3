/**
 * WaitThread, the attached reactor's helper thread for select, poll and WSAPoll (and for epoll in
 * builds without libuv): its protocol, its limits, and what it does when the system says no.
 */
import * as assert from 'node:assert/strict';
import { binding, constants, WaitMechanism } from '../lib/native';
import { PollFdArray } from '../lib/pollfds';
import { runNode } from './helpers';
import { skipUnless } from './skip';
import { requireTool } from './run-tool';

describe('WaitThread (the attached mode\'s helper thread)', () => {
  it('refuses a second wait in flight and any use after close with ERR_INVALID_STATE', () => {
    const thread = new binding.WaitThread(() => undefined);
    const memory = new Int32Array(4);
    try {
      thread.arm(WaitMechanism.Poll, memory, 0, -1, 60_000);
      assert.throws(() => thread.arm(WaitMechanism.Poll, memory, 0, -1, 60_000), { code: 'ERR_INVALID_STATE' });
    } finally {
      thread.close();
    }
    thread.close(); // Idempotent.
    assert.throws(() => thread.arm(WaitMechanism.Poll, memory, 0, -1, 0), { code: 'ERR_INVALID_STATE' });
  });

  it('a select wait refuses a descriptor >= FD_SETSIZE with a RangeError instead of overrunning the fd_set', function () {
    skipUnless(this, binding.platform !== 'win32', "Windows' fd_set limits how many sockets, not their values (test/windows/select.test.ts)");
    const thread = new binding.WaitThread(() => undefined);
    const entries = new PollFdArray(1);
    entries.push(constants.FD_SETSIZE + 5, constants.POLLIN);
    try {
      assert.throws(() => thread.arm(WaitMechanism.Select, entries.buffer, 1, -1, 0), RangeError);
      // Nothing is in flight after the refusal: a valid wait can be armed.
      entries.set(0, -1, constants.POLLIN);
      assert.doesNotThrow(() => thread.arm(WaitMechanism.Select, entries.buffer, 1, -1, 0));
    } finally {
      thread.close();
    }
  });

  it('when the system cannot start the thread: a system error (EAGAIN, pthread_create), no crash, nothing left behind', async function () {
    // RLIMIT_AS just above what the process maps leaves no room for a new thread's stack (8 MiB):
    // pthread_create fails with EAGAIN, a real failure of the real call.
    skipUnless(this, process.platform === 'linux', 'prlimit(1) and RLIMIT_AS as used here are Linux\'s');
    requireTool('prlimit', ['--version'], 'util-linux');
    const result = await runNode(`
      const fs = require('node:fs');
      const { execFileSync } = require('node:child_process');
      const { binding } = require('./dist/lib/native');
      const descriptors = () => fs.readdirSync('/proc/self/fd').length;
      const mapped = Number(/VmSize:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
      execFileSync('prlimit', ['--pid', String(process.pid), '--as=' + (mapped + 4 * 2 ** 20) + ':']);
      const before = descriptors();
      let outcome;
      try {
        new binding.WaitThread(() => {});
        outcome = 'created';
      } catch (err) {
        outcome = [err.code, err.syscall].join(' ');
      }
      const after = descriptors();
      execFileSync('prlimit', ['--pid', String(process.pid), '--as=unlimited:']);
      console.log(outcome);
      console.log(after === before ? 'no descriptor left' : 'descriptors: ' + before + ' -> ' + after);
      // The environment's cleanup hooks run at exit: none may point at the object that was never made.
      `);
    assert.equal(result.signal, null, `the process was killed by ${result.signal}: ${result.stderr}`);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stdout.trim().split('\n'), ['EAGAIN pthread_create', 'no descriptor left']);
  });

  it('an exception thrown by onReady reaches process \'uncaughtException\', as in a Node callback', async () => {
    const result = await runNode(`
      const { binding, WaitMechanism } = require('./dist/lib/native');
      process.on('uncaughtException', (err) => {
        console.log('uncaught: ' + err.message);
        thread.close();
      });
      const thread = new binding.WaitThread(() => { throw new Error('from onReady'); });
      thread.arm(WaitMechanism.Poll, new Int32Array(2), 0, -1, 0);`);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'uncaught: from onReady');
  });
});

describe('WaitThread: a closed thread\'s last wake-up', () => {
  it('a wake-up still queued when close() is called is never delivered', async () => {
    // Every wait below ends at once (timeout 0), so a wake-up is queued or about to be whenever
    // close() runs; whichever it is, onReady must not run for a thread already closed.
    const spin = new Int32Array(new SharedArrayBuffer(4));
    const memory = new Int32Array(2);
    let late = 0;
    for (let round = 0; round < 20; round++) {
      let closed = false;
      const thread = new binding.WaitThread(() => {
        if (closed) late++;
      });
      thread.arm(WaitMechanism.Poll, memory, 0, -1, 0);
      Atomics.wait(spin, 0, 0, 2); // Give the thread time to finish its wait and queue the call.
      closed = true;
      thread.close();
    }
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(late, 0, 'onReady ran after close()');
  });
});
