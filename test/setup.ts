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
  // Node closes its own handles (HTTP servers in the embedding tests) on the next turns.
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(leakedSince(atStart), [], 'descriptors leaked by the test suite');
});
