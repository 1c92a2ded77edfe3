/**
 * LoopWatcher: Node's own event loop watching an epoll descriptor (and a timer) for the attached
 * reactor, without a thread. Present where the addon was built with libuv's headers (node-gyp on
 * Linux); the reactor's suites run every attached test on it too.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { binding, constants, LoopWatcher } from '../lib/native';
import { closeAll, socketPair } from './fixtures';
import { leakedSince, openKernelObjects } from './helpers';
import { linuxFeature } from './skip';

const sink = Buffer.alloc(64);

describe('LoopWatcher (attached mode without a thread)', function () {
  let held: Map<number, string>;
  before(function () {
    // node-gyp's Linux builds reach libuv (binding.gyp); test:windows does not run this suite.
    linuxFeature(this, binding.LoopWatcher && binding.epoll_create1, 'LoopWatcher over epoll');
  });
  beforeEach(() => {
    held = openKernelObjects();
  });
  afterEach(() => {
    assert.deepEqual(leakedSince(held), []);
  });

  /** An epoll descriptor watching the read end of a fresh socket pair. */
  function epollOnPair(): { epfd: number; a: number; b: number } {
    const [a, b] = socketPair();
    const epfd = binding.epoll_create1!();
    binding.epoll_ctl!(epfd, constants.EPOLL_CTL_ADD!, a, constants.EPOLLIN);
    return { epfd, a, b };
  }

  function make(fd: number, onReady: (errno: number, timedOut: boolean) => void): LoopWatcher {
    return new binding.LoopWatcher!(fd, onReady);
  }

  it('calls onReady(0, false) while the epoll descriptor has an event pending, and never after close()', async () => {
    const { epfd, a, b } = epollOnPair();
    const calls: [number, boolean][] = [];
    let watcher: LoopWatcher;
    await new Promise<void>((resolve) => {
      watcher = make(epfd, (errno, timedOut) => {
        calls.push([errno, timedOut]);
        binding.recv(a, sink);
        watcher.close();
        // Readable again at once: a closed watcher must not call back for it.
        binding.send(b, Buffer.from('again'));
        setTimeout(resolve, 20);
      });
      binding.send(b, Buffer.from('x'));
    });
    assert.deepEqual(calls, [[0, false]]);
    closeAll(epfd, a, b);
  });

  it('level-triggered: calls again on the next turn while the event is still pending', async () => {
    const { epfd, a, b } = epollOnPair();
    binding.send(b, Buffer.from('x'));
    let calls = 0;
    await new Promise<void>((resolve) => {
      const watcher = make(epfd, () => {
        // Nothing is read: the epoll descriptor stays readable.
        if (++calls === 3) {
          watcher.close();
          resolve();
        }
      });
    });
    assert.equal(calls, 3);
    closeAll(epfd, a, b);
  });

  it('setTimer: onReady(0, true) once after the delay; set again, the new delay wins; null stops it', async () => {
    const { epfd, a, b } = epollOnPair();
    const calls: boolean[] = [];
    await new Promise<void>((resolve) => {
      const watcher = make(epfd, (errno, timedOut) => {
        calls.push(timedOut);
        watcher.close();
        setTimeout(resolve, 30);
      });
      watcher.setTimer(10_000);
      watcher.setTimer(null);
      watcher.setTimer(15);
    });
    assert.deepEqual(calls, [true]);
    closeAll(epfd, a, b);
  });

  it('refuses what epoll cannot watch (EPERM for a regular file), a descriptor already watched (EEXIST), and bad arguments', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-watcher-')), 'plain');
    fs.writeFileSync(file, 'x');
    const fd = fs.openSync(file, 'r');
    try {
      assert.throws(() => make(fd, () => undefined), { code: 'EPERM', syscall: 'uv_poll_init' });
    } finally {
      fs.closeSync(fd);
      fs.rmSync(path.dirname(file), { recursive: true });
    }
    const { epfd, a, b } = epollOnPair();
    const first = make(epfd, () => undefined);
    try {
      assert.throws(() => make(epfd, () => undefined), { code: 'EEXIST', syscall: 'uv_poll_init' });
    } finally {
      first.close();
    }
    assert.throws(() => make(-1, () => undefined), RangeError);
    assert.throws(() => make('3' as unknown as number, () => undefined), TypeError);
    assert.throws(() => make(epfd, 'not a function' as unknown as () => void), TypeError);
    const watcher = make(epfd, () => undefined);
    assert.throws(() => watcher.setTimer('soon' as unknown as number), TypeError);
    watcher.close();
    closeAll(epfd, a, b);
  });

  it('after close(): setTimer throws ERR_INVALID_STATE; close, ref and unref do nothing; the descriptor can be watched again', () => {
    const { epfd, a, b } = epollOnPair();
    const watcher = make(epfd, () => undefined);
    watcher.close();
    watcher.close();
    watcher.ref();
    watcher.unref();
    assert.throws(() => watcher.setTimer(1), { code: 'ERR_INVALID_STATE' });
    // uv_poll_stop runs at close(): the loop no longer holds the descriptor.
    make(epfd, () => undefined).close();
    closeAll(epfd, a, b);
  });
});
