/**
 * ConnectionOptions.shortReads: on edge-triggered epoll a connection ends its turn's reading at a short
 * read, saving the recv that would say EAGAIN, and still reads to the end whatever the kernel cases of
 * docs/readiness-lab.md (short-read) bring: data and FIN in one segment, urgent data, a reset, a resume.
 */
import * as assert from 'node:assert/strict';
import { binding, constants, hasEpoll } from '../lib/native';
import { Reactor } from '../lib/reactor';
import { EpollSelector } from '../lib/selectors/epoll';
import { IoUringSelector, ioUringUnavailable } from '../lib/selectors/io-uring';
import { Connection, ConnectionOptions } from '../lib/stream/connection';
import { EVENT_CONDITION, EVENT_READ, type Selector } from '../lib/selectors/selector';
import type { IoHandler } from '../lib/reactor';
import { linuxFeature } from './skip';

/** A connected loopback TCP pair, both non-blocking; `peer` has Nagle off. */
function tcpPair(): { local: number; peer: number } {
  const listener = binding.socket(constants.AF_INET, constants.SOCK_STREAM);
  try {
    binding.bind(listener, '127.0.0.1', 0);
    binding.listen(listener, 1);
    const peer = binding.socket(constants.AF_INET, constants.SOCK_STREAM);
    binding.connect(peer, '127.0.0.1', binding.getsockname(listener).port as number);
    binding.setsockopt(peer, constants.IPPROTO_TCP, constants.TCP_NODELAY, true);
    binding.setNonBlocking(peer, true);
    const local = binding.accept(listener, true);
    return { local, peer };
  } finally {
    binding.close(listener);
  }
}

interface Served {
  reactor: Reactor;
  conn: Connection;
  readonly peer: number;
  received: Buffer[];
  ended: () => boolean;
  errors: Error[];
  /** recv calls the connection made on its descriptor. */
  recvs: () => number;
  closePeer: () => void;
  done: () => void;
}

function serve(options: ConnectionOptions, selector: Selector<IoHandler> = new EpollSelector<IoHandler>({ edgeTriggered: true })): Served {
  const reactor = new Reactor(selector);
  const { local, peer } = tcpPair();
  const conn = new Connection(reactor, local, { readSize: 4096, ...options });
  const received: Buffer[] = [];
  const errors: Error[] = [];
  let ended = false;
  conn.onData = (data) => received.push(Buffer.from(data));
  conn.onEnd = () => { ended = true; };
  conn.onError = (err) => errors.push(err);
  // Counts the connection's recv calls: it calls binding.recv through the module's object.
  const recv = binding.recv;
  let recvs = 0;
  let peerOpen = true;
  binding.recv = (fd, ...rest) => {
    if (fd === local) recvs++;
    return recv(fd, ...rest);
  };
  return {
    reactor, conn, peer, received, errors, ended: () => ended, recvs: () => recvs,
    closePeer: () => {
      peerOpen = false;
      binding.close(peer);
    },
    done: () => {
      binding.recv = recv;
      conn.destroy();
      if (peerOpen) binding.close(peer);
      reactor.close();
    },
  };
}

const total = (chunks: Buffer[]): number => chunks.reduce((a, c) => a + c.length, 0);

describe('stream: shortReads (edge-triggered epoll ends a turn\'s reading at a short read)', function () {
  before(function () {
    linuxFeature(this, hasEpoll(), 'epoll');
  });

  it('EpollSelector: EVENT_CONDITION comes with EVENT_READ for a FIN only when registered for; plain data never has it', () => {
    for (const asked of [false, true]) {
      const selector = new EpollSelector({ edgeTriggered: true });
      const { local, peer } = tcpPair();
      try {
        selector.register(local, EVENT_READ | (asked ? EVENT_CONDITION : 0));
        binding.send(peer, Buffer.from('data'));
        assert.deepEqual(selector.select(1000).map((key) => key.readyEvents), [EVENT_READ]);
        binding.shutdown(peer, constants.SHUT_WR);
        assert.deepEqual(selector.select(1000).map((key) => key.readyEvents), [asked ? EVENT_READ | EVENT_CONDITION : EVENT_READ]);
      } finally {
        selector.close();
        binding.close(local);
        binding.close(peer);
      }
    }
    const selector = new EpollSelector();
    try {
      assert.throws(() => selector.register(0, EVENT_CONDITION), RangeError, 'EVENT_CONDITION alone');
    } finally {
      selector.close();
    }
  });

  it('is in effect only on edge-triggered epoll, and only when asked for', () => {
    const cases: Array<[string, () => Selector<IoHandler>, boolean, boolean]> = [
      ['epoll-et, asked', () => new EpollSelector<IoHandler>({ edgeTriggered: true }), true, true],
      ['epoll-et, not asked', () => new EpollSelector<IoHandler>({ edgeTriggered: true }), false, false],
      ['epoll-lt, asked', () => new EpollSelector<IoHandler>(), true, false],
    ];
    if (ioUringUnavailable() === null) {
      // io_uring has no EVENT_CONDITION; with POLLPRI every completion would say PRI anyway.
      cases.push(['io_uring-et, asked', () => new IoUringSelector<IoHandler>({ edgeTriggered: true }), true, false]);
    }
    for (const [name, selector, asked, expected] of cases) {
      const s = serve({ shortReads: asked }, selector());
      try {
        assert.equal(s.conn.shortReads, expected, name);
      } finally {
        s.done();
      }
    }
  });

  for (const shortReads of [false, true]) {
    it(`one message at a time: ${shortReads ? 'one recv per message (the short read ends the turn)' : 'two recv per message (the second says EAGAIN)'}`, () => {
      const s = serve({ shortReads });
      try {
        const messages = 20;
        for (let i = 0; i < messages; i++) {
          binding.send(s.peer, Buffer.alloc(10, 0x61 + i));
          s.reactor.runOnce(5000);
        }
        assert.equal(total(s.received), 10 * messages);
        assert.equal(s.recvs(), shortReads ? messages : 2 * messages);
      } finally {
        s.done();
      }
    });
  }

  it('data and FIN in one segment: every byte, then the end (the event carries RDHUP)', () => {
    const s = serve({ shortReads: true });
    try {
      binding.setsockopt(s.peer, constants.IPPROTO_TCP, constants.TCP_CORK as number, true);
      binding.send(s.peer, Buffer.alloc(100, 0x62));
      binding.shutdown(s.peer, constants.SHUT_WR);
      s.reactor.runOnce(5000);
      assert.equal(total(s.received), 100);
      assert.equal(s.ended(), true);
    } finally {
      s.done();
    }
  });

  it('urgent data: recv stops at the mark, and the bytes behind it are read in the same turn (the event carries PRI)', () => {
    const s = serve({ shortReads: true });
    try {
      binding.send(s.peer, Buffer.alloc(100, 0x63));
      binding.send(s.peer, Buffer.from('!'), 0, 1, constants.MSG_OOB);
      binding.send(s.peer, Buffer.alloc(100, 0x64));
      s.reactor.runOnce(5000);
      assert.deepEqual(s.received.map((b) => b.length), [100, 100]);
      assert.equal(Buffer.concat(s.received).toString('latin1'), 'c'.repeat(100) + 'd'.repeat(100));
    } finally {
      s.done();
    }
  });

  it('a reset after a short read: the next event says ERR|HUP and the connection fails with ECONNRESET', () => {
    const s = serve({ shortReads: true });
    try {
      binding.send(s.peer, Buffer.alloc(100, 0x65));
      s.reactor.runOnce(5000);
      assert.equal(total(s.received), 100);
      binding.send(s.conn.fd, Buffer.from('?')); // Input the peer never reads: its close resets.
      s.closePeer();
      s.reactor.runOnce(5000);
      assert.deepEqual(s.errors.map((e) => (e as Error & { code?: string }).code), ['ECONNRESET']);
    } finally {
      s.done();
    }
  });

  it('paused while data and FIN arrive, then resumed: the synthetic event reads to the end', () => {
    const s = serve({ shortReads: true });
    try {
      s.conn.pause();
      binding.send(s.peer, Buffer.alloc(100, 0x66));
      binding.shutdown(s.peer, constants.SHUT_WR);
      s.reactor.runOnce(200); // The edge comes and is spent while paused.
      assert.equal(total(s.received), 0);
      s.conn.resume();
      s.reactor.runOnce(5000); // The resume's own event, from a later turn.
      assert.equal(total(s.received), 100);
      assert.equal(s.ended(), true);
    } finally {
      s.done();
    }
  });
});
