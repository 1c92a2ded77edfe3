/**
 * Root hooks: the whole suite must give back every socket, epoll and eventfd descriptor it
 * opened. Individual suites check tighter windows with the same helper.
 */
import * as assert from 'node:assert/strict';
import { leakedSince, openKernelObjects } from './helpers';

let atStart: Map<number, string>;

before(() => {
  atStart = openKernelObjects();
});

after(async () => {
  // Every test awaits its own sockets' 'close'; give Node's loop a few turns for handles it closes
  // on its own schedule, and fail only if something is still open after that.
  for (let turn = 0; turn < 100 && leakedSince(atStart).length > 0; turn++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.deepEqual(leakedSince(atStart), [], 'descriptors leaked by the test suite');
});
