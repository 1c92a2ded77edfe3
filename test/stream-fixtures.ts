/** Helpers for the stream-layer suites: a listener on an attached reactor, Node `net` clients as peers, and what they send and read. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Reactor } from '../lib/reactor';
import { Connection } from '../lib/stream/connection';
import { Listener, ListenerOptions } from '../lib/stream/listener';
import type { TlsConnection } from '../lib/stream/tls-connection';

/** A connection of the stream layer: plain, or TLS over a plain one (the same calls and callbacks). */
export type StreamConnection = Connection | TlsConnection;

export interface Served<C = Connection> {
  listener: Listener;
  port: number;
  /** Resolves with the next connection the listener hands out (after onConnection set it up). */
  next(): Promise<C>;
}

/** Listens on 127.0.0.1 with `setup` run for each connection; the reactor must be attached. */
export function serve(reactor: Reactor, setup: (conn: Connection) => void, options: ListenerOptions = {}): Served {
  return serveWith(reactor, options, (conn, ready) => {
    setup(conn);
    ready(conn);
  });
}

/**
 * Listens on 127.0.0.1; `accept` gets each plain connection and hands out what the test is to see
 * (the connection itself, or a TLS connection over it once secure) through `ready`.
 */
export function serveWith<C>(reactor: Reactor, options: ListenerOptions, accept: (plain: Connection, ready: (conn: C) => void) => void): Served<C> {
  const waiting: ((conn: C) => void)[] = [];
  const ready: C[] = [];
  const hand = (conn: C): void => {
    const take = waiting.shift();
    if (take) take(conn);
    else ready.push(conn);
  };
  const listener = new Listener(reactor, { endpoint: { host: '127.0.0.1', port: 0 }, ...options }, (conn) => accept(conn, hand));
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
export function watch(conn: StreamConnection): Record & { closedPromise: Promise<Error | null> } {
  const record: Record = { events: [], errors: [], closes: [], data: [] };
  let resolveClosed!: (err: Error | null) => void;
  const closedPromise = new Promise<Error | null>((resolve) => {
    resolveClosed = resolve;
  });
  const previousData = conn.onData as ((this: StreamConnection, data: Buffer) => void) | null;
  conn.onData = function (this: StreamConnection, data: Buffer) {
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

/** A file of `size` bytes in `dir`, each MiB different (a misplaced one changes the hash), and its sha256. */
export function patternFile(dir: string, size: number): { file: string; hash: string } {
  const file = path.join(dir, `pattern-${size}.bin`);
  const hash = createHash('sha256');
  const block = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i);
  const fd = fs.openSync(file, 'w');
  for (let written = 0; written < size; written += block.length) {
    block.writeUInt32LE(written, 0);
    const piece = block.subarray(0, Math.min(block.length, size - written));
    fs.writeSync(fd, piece);
    hash.update(piece);
  }
  fs.closeSync(fd);
  return { file, hash: hash.digest('hex') };
}

/** Reads `socket` slowly to its end: a pause after every `burst` bytes, resumed from a later timer. */
export function readSlowly(socket: net.Socket, burst: number, pauseMs: number): Promise<{ bytes: number; hash: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let sinceBreak = 0;
    socket.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
      sinceBreak += chunk.length;
      if (sinceBreak >= burst) {
        sinceBreak = 0;
        socket.pause();
        setTimeout(() => socket.resume(), pauseMs);
      }
    });
    socket.once('end', () => resolve({ bytes, hash: hash.digest('hex') }));
    socket.once('error', reject);
    socket.resume(); // A 'data' listener does not resume a stream paused by pause().
  });
}
