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
import { socketsPerTest } from './loopback';

const SAFETY_MS = 5000;

describe('selectors on Windows', () => {
  const { untrack, pair } = socketsPerTest();

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

  it('the package root loads on Windows and exports WSAPollSelector', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const root = require('../../lib/index') as typeof import('../../lib/index');
    assert.equal(root.WSAPollSelector, WSAPollSelector);
    assert.equal(root.binding.platform, 'win32');
  });

  it('EpollSelector and PollSelector refuse to be built, with an error that names the way out', () => {
    assert.throws(() => new EpollSelector(), /epoll is not available on this platform \(win32\)/);
    assert.throws(() => new PollSelector(), /WSAPollSelector/);
  });

  it('a peer\'s close (POLLHUP on Windows) reaches a WSAPollSelector reader as readable', () => {
    const [client, server] = pair();
    const selector = new WSAPollSelector<string>();
    try {
      selector.register(server, EVENT_READ, 'server');
      untrack(client);
      binding.close(client);
      const ready = selector.select(SAFETY_MS);
      assert.equal(ready.length, 1);
      assert.equal(ready[0].readyEvents, EVENT_READ);
      assert.equal(binding.recv(server, Buffer.alloc(4)), 0);
    } finally {
      selector.close();
    }
  });
});

describe('WaitThread on Windows (the attached reactor\'s helper thread)', () => {
  const { pair } = socketsPerTest();

  // Each case arms a wait on an idle socket that nothing else would end, then ends it its way.
  const cases: { name: string; mechanism: WaitMechanism; end: (thread: WaitThread, client: number) => void }[] = [
    {
      name: 'reports back when a socket in its WSAPoll wait becomes readable',
      mechanism: WaitMechanism.Poll,
      end: (_, client) => binding.send(client, Buffer.from('x')),
    },
    {
      name: 'wake() ends a WSAPoll wait (the loopback-socket waker works)',
      mechanism: WaitMechanism.Poll,
      end: (thread) => thread.wake(),
    },
    {
      name: 'wake() ends a select() wait too',
      mechanism: WaitMechanism.Select,
      end: (thread) => thread.wake(),
    },
  ];

  for (const { name, mechanism, end } of cases) {
    it(name, async () => {
      const [client, server] = pair();
      const entries = new PollFdArray(1);
      entries.push(server, binding.constants.POLLIN);
      const err = await new Promise<number>((resolve, reject) => {
        const thread = new binding.WaitThread((errno) => {
          clearTimeout(guard);
          thread.close();
          resolve(errno);
        });
        const guard = setTimeout(() => {
          thread.close();
          reject(new Error('the helper thread never reported back'));
        }, SAFETY_MS);
        thread.arm(mechanism, entries.buffer, entries.length, -1, null);
        setTimeout(() => end(thread, client), 10);
      });
      assert.equal(err, 0);
    });
  }
});
