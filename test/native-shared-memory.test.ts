/**
 * Caller memory another thread writes while a binding reads it. selectPollfds checks every fd
 * against FD_SETSIZE and then builds its fd_sets from the same array: if that array is a view of a
 * SharedArrayBuffer, a worker can change an fd between the check and FD_SET. The binding reads each
 * entry once and bounds that copy, so a racing writer can make an answer meaningless, never make it
 * write past an fd_set. Here a worker flips one entry between a real socket and a descriptor far past
 * FD_SETSIZE as fast as it can while this thread calls selectPollfds; every call must end normally
 * (a result, or the RangeError of a check that saw the large value). Under the sanitizer build
 * (npm run test:asan) an overflow would be reported, not just survived.
 */
import * as assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { binding, constants } from '../lib/native';
import { closeAll, socketPair } from './fixtures';

const FLIPPER = `
const { workerData } = require('node:worker_threads');
const { words, fd, far, flag } = workerData;
while (Atomics.load(flag, 0) === 0) {
  Atomics.store(words, 0, far);
  Atomics.store(words, 0, fd);
}
`;

describe('native: pollfd arrays in shared memory, written by another thread during the call', function () {
  this.timeout(30000);

  it('selectPollfds never acts on a descriptor it did not bound-check (a worker flips it past FD_SETSIZE; an overflow is reported under npm run test:asan)', async () => {
    const [a, b] = socketPair();
    const stride = constants.POLLFD_SIZE;
    const shared = new SharedArrayBuffer(stride * 2);
    const words = new Int32Array(shared);
    const halves = new Int16Array(shared);
    const wordsPerEntry = stride / 4;
    words[0] = a;
    halves[constants.POLLFD_EVENTS_OFFSET / 2] = constants.POLLIN | constants.POLLOUT;
    words[wordsPerEntry] = b;
    halves[(stride + constants.POLLFD_EVENTS_OFFSET) / 2] = constants.POLLOUT;
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const far = constants.FD_SETSIZE * 64;
    const worker = new Worker(FLIPPER, { eval: true, workerData: { words, fd: a, far, flag } });
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
    let results = 0;
    let refused = 0;
    try {
      for (let i = 0; i < 50_000; i++) {
        try {
          const n = binding.selectPollfds(words, 2, 0);
          assert.ok(n >= 0 && n <= 2);
          results++;
        } catch (err) {
          assert.ok(err instanceof RangeError, String(err));
          refused++;
        }
      }
    } finally {
      Atomics.store(flag, 0, 1);
      assert.equal(await exited, 0);
      closeAll(a, b);
    }
    assert.equal(results + refused, 50_000);
    assert.ok(results > 0, 'some calls saw a real descriptor');
  });
});
