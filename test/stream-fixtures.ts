/** Helpers for the stream-layer suites: a listener on an attached reactor, and Node `net` clients as peers. */
import * as net from 'node:net';
import { Reactor } from '../lib/reactor';
import { Connection } from '../lib/stream/connection';
import { Listener, ListenerOptions } from '../lib/stream/listener';

export interface Served {
  listener: Listener;
  port: number;
  /** Resolves with the next connection the listener hands out (after onConnection set it up). */
  next(): Promise<Connection>;
}

/** Listens on 127.0.0.1 with `setup` run for each connection; the reactor must be attached. */
export function serve(reactor: Reactor, setup: (conn: Connection) => void, options: ListenerOptions = {}): Served {
  const waiting: ((conn: Connection) => void)[] = [];
  const ready: Connection[] = [];
  const listener = new Listener(reactor, { endpoint: { host: '127.0.0.1', port: 0 }, ...options }, (conn) => {
    setup(conn);
    const take = waiting.shift();
    if (take) take(conn);
    else ready.push(conn);
  });
  const { port } = listener.listen();
  return {
    listener,
    port,
    next: () => new Promise((resolve) => {
      const conn = ready.shift();
      if (conn) resolve(conn);
      else waiting.push(resolve);
    }),
  };
}

/** A connected Node `net` client (allowHalfOpen: ending is the test's choice). */
export function client(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Everything `socket` receives until its end of stream. */
export function readAll(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

/** Ends our side too (a half-open client stays open after the server's end), reads what is left, and awaits 'close'. */
export function finish(socket: net.Socket): Promise<boolean> {
  const done = closed(socket);
  socket.end();
  socket.resume();
  return done;
}

/** Resolves when `socket` has closed (its 'close' event), with whether it had an error. */
export function closed(socket: net.Socket): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed && socket.closed) resolve(false);
    else socket.once('close', resolve);
  });
}

/** What happened to a connection: every callback's calls, in order. */
export interface Record {
  events: string[];
  errors: Error[];
  closes: (Error | null)[];
  data: Buffer[];
}

/** Records onError and onClose (and onData, as copies) of `conn`; `closedPromise` resolves at onClose. */
export function watch(conn: Connection): Record & { closedPromise: Promise<Error | null> } {
  const record: Record = { events: [], errors: [], closes: [], data: [] };
  let resolveClosed!: (err: Error | null) => void;
  const closedPromise = new Promise<Error | null>((resolve) => {
    resolveClosed = resolve;
  });
  const previousData = conn.onData;
  conn.onData = function (data) {
    record.events.push('data');
    record.data.push(Buffer.from(data));
    previousData?.call(this, data);
  };
  conn.onError = (err) => {
    record.events.push('error');
    record.errors.push(err);
  };
  conn.onClose = (err) => {
    record.events.push('close');
    record.closes.push(err);
    resolveClosed(err);
  };
  return { ...record, closedPromise };
}
