import * as assert from 'node:assert/strict';
import { binding } from '../lib/native';
import { MECHANISMS, openWatcher, parseMechanisms, plainVariant, unavailableReason } from '../tools/lab/mechanisms';
import { runScenario } from '../tools/lab/registry';
import { closeAll, openPair } from '../tools/lab/sockets';
import { leakedSince, openKernelObjects } from './helpers';
import { skipUnless } from './skip';

describe('lab: mechanism adapters and parameters', () => {
  it('--mechanism accepts names, comma lists, "epoll" and "all", in the lab\'s order', () => {
    assert.deepEqual(parseMechanisms(undefined), [...MECHANISMS]);
    assert.deepEqual(parseMechanisms(['epoll']), ['epoll-lt', 'epoll-et', 'epoll-oneshot']);
    assert.deepEqual(parseMechanisms(['epoll-et,select', 'poll']), ['select', 'poll', 'epoll-et']);
    assert.deepEqual(parseMechanisms(['all']), [...MECHANISMS]);
    assert.throws(() => parseMechanisms(['kqueue']), RangeError);
  });

  for (const mechanism of MECHANISMS) {
    it(`${mechanism}: reports IN for unread data, OUT for room to write, nothing once interest is removed`, function () {
      // io_uring: where the kernel lets this process set up a ring (test/lab-io-uring.test.ts says more).
      const refused = unavailableReason(mechanism);
      skipUnless(this, refused === null, refused!);
      const before = openKernelObjects();
      const watcher = openWatcher(plainVariant(mechanism));
      const { local, peer } = openPair();
      try {
        watcher.add(local, { read: true, write: true });
        binding.send(peer, Buffer.from('x'));
        assert.deepEqual(watcher.wait(1000), [{ fd: local, events: ['IN', 'OUT'] }]);
        watcher.remove(local);
        assert.deepEqual(watcher.wait(0), []);
      } finally {
        watcher.close();
        closeAll(local, peer);
      }
      assert.deepEqual(leakedSince(before), []);
    });
  }

  it('poll: removing one of several descriptors keeps the others watched', () => {
    const watcher = openWatcher(plainVariant('poll'));
    const a = openPair();
    const b = openPair();
    try {
      watcher.add(a.local, { read: true });
      watcher.add(b.local, { read: true });
      watcher.remove(a.local);
      binding.send(a.peer, Buffer.from('a'));
      binding.send(b.peer, Buffer.from('b'));
      assert.deepEqual(watcher.wait(1000), [{ fd: b.local, events: ['IN'] }]);
    } finally {
      watcher.close();
      closeAll(a.local, a.peer, b.local, b.peer);
    }
  });

  it('options a mechanism does not have are refused: EPOLLEXCLUSIVE outside epoll, RDHUP for select', () => {
    assert.throws(() => openWatcher({ mechanism: 'poll', rdhup: false, exclusive: true }), RangeError);
    assert.throws(() => openWatcher({ mechanism: 'select', rdhup: true, exclusive: false }), RangeError);
  });

  it('scenario parameters: wrong type is a TypeError, out of range or not taken a RangeError', async () => {
    await assert.rejects(runScenario('partial-read', { params: { bytes: 1.5 } }), TypeError);
    await assert.rejects(runScenario('partial-read', { params: { drain: 1 as unknown as boolean } }), TypeError);
    await assert.rejects(runScenario('partial-read', { params: { chunk: 0 } }), RangeError);
    await assert.rejects(runScenario('partial-read', { params: { chunk: 65537 } }), RangeError);
    await assert.rejects(runScenario('partial-read', { params: { workers: 2 } }), /does not take "workers"/);
    await assert.rejects(runScenario('no-such-scenario'), RangeError);
  });
});
