/**
 * Host names on the stream layer (docs/streams.md, "Host names"): 'localhost' is 127.0.0.1 without a
 * lookup, so it works in blocking run() as well as attached; any other name is resolved with
 * node:dns, which answers on Node's event loop: attached reactors only, and a clear error (never a
 * hang) when a blocking run() asks. The promise form of connect holds reading until the caller has
 * set its callbacks.
 */
import * as assert from 'node:assert/strict';
import { promises as dns } from 'node:dns';
import * as os from 'node:os';
import { Reactor } from '../lib/reactor';
import { Connection, ConnectionError } from '../lib/stream/connection';
import { Listener } from '../lib/stream/listener';
import { leakedSince, openKernelObjects } from './helpers';
import { skipUnless } from './skip';

function echo(conn: Connection): void {
  conn.onData = function (data) {
    this.write(data);
  };
}

describe('stream: host names and connectAsync', function () {
  this.timeout(20000);
  let before: Map<number, string>;
  beforeEach(() => {
    before = openKernelObjects();
  });
  afterEach(() => {
    assert.deepEqual(leakedSince(before), []);
  });

  it("blocking run(): Listener and Connection.connect take 'localhost' (no lookup, so no event loop needed)", () => {
    const reactor = new Reactor();
    const listener = new Listener(reactor, { endpoint: { host: 'localhost', port: 0 } }, echo);
    const { port } = listener.listen();
    const conn = Connection.connect(reactor, { host: 'localhost', port });
    let got = '';
    conn.onConnect = function () {
      this.write('ping');
    };
    conn.onData = function (data) {
      got += data.toString();
      if (got === 'ping') {
        this.destroy();
        listener.close();
      }
    };
    reactor.run(); // Ends when nothing is registered.
    assert.equal(got, 'ping');
    for (const c of listener.connections) c.destroy();
    reactor.close();
  });

  it('blocking run(): connecting to a host name from inside the turn throws ERR_IOMUX_LOOKUP_NEEDS_EVENT_LOOP at once, instead of hanging', () => {
    const reactor = new Reactor();
    let thrown: (Error & { code?: string }) | null = null;
    reactor.setTimeout(() => {
      try {
        Connection.connect(reactor, { host: 'some.host.example', port: 1 });
      } catch (err) {
        thrown = err as Error & { code?: string };
      }
    }, 0);
    reactor.run();
    assert.equal(thrown!.code, 'ERR_IOMUX_LOOKUP_NEEDS_EVENT_LOOP');
    assert.match(thrown!.message, /some\.host\.example/);
    reactor.close();
  });

  it('attached: a host name is resolved with node:dns without blocking the reactor, and connects', async function () {
    const name = os.hostname();
    let address: string;
    try {
      address = (await dns.lookup(name)).address;
    } catch {
      skipUnless(this, false, `this machine cannot resolve its own name ${name} (no /etc/hosts entry): nothing to test it on`);
    }
    const reactor = new Reactor().attach();
    const listener = new Listener(reactor, { endpoint: { host: address!, port: 0 } }, echo);
    const { port } = listener.listen();
    const conn = Connection.connect(reactor, { host: name, port });
    assert.equal(conn.lifecycle, 'connecting');
    conn.write('queued while resolving');
    const echoed = await new Promise<string>((resolve, reject) => {
      let got = '';
      conn.onData = (data) => {
        got += data.toString();
        if (got === 'queued while resolving') resolve(got);
      };
      conn.onError = reject;
    });
    assert.equal(echoed, 'queued while resolving');
    assert.equal(conn.remoteAddress.address, address!);
    conn.destroy();
    listener.shutdown(0, () => reactor.close());
    await new Promise((resolve) => setImmediate(resolve));
    while (!reactor.selector.closed) await new Promise((resolve) => setImmediate(resolve));
  });

  it('connectAsync: resolves with an established connection whose first bytes reach the onData set after the await; rejects with the addressed error', async () => {
    const reactor = new Reactor().attach();
    const listener = new Listener(reactor, {}, (conn) => {
      conn.write('greeting sent at accept');
      echo(conn);
    });
    const { port } = listener.listen();
    const conn = await Connection.connectAsync(reactor, { host: 'localhost', port });
    assert.equal(conn.lifecycle, 'open');
    const first = await new Promise<string>((resolve) => {
      conn.onData = (data) => resolve(data.toString());
    });
    assert.equal(first, 'greeting sent at accept', 'nothing was read before the caller set onData');
    conn.destroy();
    listener.close();
    await assert.rejects(Connection.connectAsync(reactor, { host: '127.0.0.1', port }),
      (err: ConnectionError) => err.code === 'ECONNREFUSED' && err.message === `connect ECONNREFUSED 127.0.0.1:${port}`);
    for (const c of listener.connections) c.destroy();
    reactor.close();
  });
});
