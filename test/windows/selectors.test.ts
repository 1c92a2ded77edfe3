/**
 * The selectors on Windows: DefaultSelector is WSAPoll, the mechanisms Windows lacks say so, and
 * the helper thread that attaches a reactor to Node's event loop waits in WSAPoll and is woken
 * through the Windows waker (a loopback TCP pair: Winsock waits accept sockets only).
 * The shared contract suite (test/selectors.test.ts) runs here too: see test/windows/mocharc.json.
 */
import * as assert from 'node:assert/strict';
import { binding, WaitMechanism, WaitThread } from '../../lib/native';
import { availableMechanisms, DefaultSelector } from '../../lib/selectors/default';
import { EpollSelector } from '../../lib/selectors/epoll';
import { PollSelector } from '../../lib/selectors/poll';
import { EVENT_READ } from '../../lib/selectors/selector';
import { WSAPollSelector } from '../../lib/selectors/wsapoll';
import { PollFdArray } from '../../lib/pollfds';
import { closeAll, tcpPair } from '../fixtures';

const SAFETY_MS = 5000;

describe('selectors on Windows', () => {
  it('DefaultSelector is a WSAPollSelector; WSAPoll and select are the mechanisms here', () => {
    assert.deepEqual(availableMechanisms(), ['wsapoll', 'select']);
    const selector = new DefaultSelector();
    try {
      assert.ok(selector instanceof WSAPollSelector);
      assert.equal(selector.mechanism, 'wsapoll');
    } finally {
      selector.close();
    }
  });

  it('EpollSelector and PollSelector refuse to be built, with an error that names the way out', () => {
    assert.throws(() => new EpollSelector(), /epoll is not available on this platform \(win32\)/);
    assert.throws(() => new PollSelector(), /WSAPollSelector/);
  });

  it('a peer\'s close (POLLHUP on Windows) reaches a WSAPollSelector reader as readable', () => {
    const [client, server] = tcpPair();
    const selector = new WSAPollSelector<string>();
    try {
      selector.register(server, EVENT_READ, 'server');
      binding.close(client);
      const ready = selector.select(SAFETY_MS);
      assert.equal(ready.length, 1);
      assert.equal(ready[0].readyEvents, EVENT_READ);
      assert.equal(binding.recv(server, Buffer.alloc(4)), 0);
    } finally {
      selector.close();
      closeAll(server);
    }
  });
});

describe('WaitThread on Windows (the attached reactor\'s helper thread)', () => {
  /** Arms one wait and resolves with the errno its onReady reports. */
  function waitOnce(arm: (thread: WaitThread) => void, poke?: (thread: WaitThread) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      const guard = setTimeout(() => {
        thread.close();
        reject(new Error('the helper thread never reported back'));
      }, SAFETY_MS);
      const thread = new binding.WaitThread((err) => {
        clearTimeout(guard);
        thread.close();
        resolve(err);
      });
      arm(thread);
      poke?.(thread);
    });
  }

  it('reports back when a socket in its WSAPoll wait becomes readable', async () => {
    const [client, server] = tcpPair();
    try {
      const entries = new PollFdArray(1);
      entries.push(server, binding.constants.POLLIN);
      const err = await waitOnce(
        (thread) => thread.arm(WaitMechanism.Poll, entries.buffer, entries.length, -1, null),
        () => setTimeout(() => binding.send(client, Buffer.from('x')), 10),
      );
      assert.equal(err, 0);
    } finally {
      closeAll(client, server);
    }
  });

  it('wake() ends a wait that nothing would end (the loopback-socket waker works)', async () => {
    const [client, server] = tcpPair();
    try {
      const entries = new PollFdArray(1);
      entries.push(server, binding.constants.POLLIN);
      const err = await waitOnce(
        (thread) => thread.arm(WaitMechanism.Poll, entries.buffer, entries.length, -1, null),
        (thread) => setTimeout(() => thread.wake(), 10),
      );
      assert.equal(err, 0);
    } finally {
      closeAll(client, server);
    }
  });

  it('wake() ends a select() wait too', async () => {
    const [client, server] = tcpPair();
    try {
      const entries = new PollFdArray(1);
      entries.push(server, binding.constants.POLLIN);
      const err = await waitOnce(
        (thread) => thread.arm(WaitMechanism.Select, entries.buffer, entries.length, -1, null),
        (thread) => setTimeout(() => thread.wake(), 10),
      );
      assert.equal(err, 0);
    } finally {
      closeAll(client, server);
    }
  });
});
