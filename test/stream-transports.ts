/**
 * The stream layer's two transports as one table, so that a contract suite runs over both: plain
 * Connections with Node `net` clients, and TlsConnections over them with Node `tls` clients. Each
 * `serve()` hands a connection to the test once it is established (TLS: once the handshake is
 * complete), so both start from the same state: `open`.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Reactor } from '../lib/reactor';
import { Connection } from '../lib/stream/connection';
import { Endpoint } from '../lib/stream/endpoint';
import { ListenerOptions } from '../lib/stream/listener';
import { TlsConnection } from '../lib/stream/tls-connection';
import { TlsContext, tlsUnavailable } from '../lib/stream/tls-context';
import { client, Served, serveWith, StreamConnection } from './stream-fixtures';
import { tlsFixtures } from './tls-fixtures';

export interface Transport {
  name: 'plain' | 'tls';
  /** Run in the suite's `before`: TLS makes its certificate there. */
  prepare(): Promise<void>;
  /** Listens on 127.0.0.1; `setup` runs for each connection once established, then `next()` hands it out. */
  serve(reactor: Reactor, setup: (conn: StreamConnection) => void, options?: ListenerOptions): Served<StreamConnection>;
  /** A Node client, established (TLS: secure), half-open allowed. */
  client(port: number): Promise<net.Socket>;
  /** Resets the client's TCP connection (RST). */
  reset(socket: net.Socket): void;
  /** A client connection of ours to `endpoint`. */
  connect(reactor: Reactor, endpoint: Endpoint): StreamConnection;
}

const plain: Transport = {
  name: 'plain',
  prepare: () => Promise.resolve(),
  serve: (reactor, setup, options = {}) => serveWith<StreamConnection>(reactor, options, (conn, ready) => {
    setup(conn);
    ready(conn);
  }),
  client,
  reset: (socket) => socket.resetAndDestroy(),
  connect: (reactor, endpoint) => Connection.connect(reactor, endpoint),
};

let serverContext: TlsContext | null = null;
/** Each TLS client's TCP socket, which is what a reset needs (a TLSSocket has no resetAndDestroy of its own). */
const tcpOf = new WeakMap<net.Socket, net.Socket>();

const overTls: Transport = {
  name: 'tls',
  async prepare() {
    const { self } = await tlsFixtures();
    serverContext ??= TlsContext.server({ cert: self.cert, key: self.key });
  },
  serve: (reactor, setup, options = {}) => serveWith<StreamConnection>(reactor, options, (conn, ready) => {
    const secured = TlsConnection.server(conn, { context: serverContext! });
    secured.onSecure = function () {
      this.onSecure = null;
      setup(this);
      ready(this);
    };
  }),
  client: (port) => new Promise((resolve, reject) => {
    const tcp = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    // allowHalfOpen reaches the TLSSocket (tls.connect passes it on; @types/node leaves it out).
    const socket = tls.connect({ socket: tcp, rejectUnauthorized: false, allowHalfOpen: true } as tls.ConnectionOptions);
    tcpOf.set(socket, tcp);
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  }),
  reset: (socket) => {
    tcpOf.get(socket)!.resetAndDestroy();
    socket.destroy();
  },
  connect: (reactor, endpoint) => TlsConnection.connect(reactor, endpoint, { context: TlsContext.client({ verify: false }) }),
};

/** Plain, then TLS (where the addon has it: tlsUnavailable() says why not). */
export function transports(): Transport[] {
  return tlsUnavailable() === null ? [plain, overTls] : [plain];
}
