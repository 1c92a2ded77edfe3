/** Load for the echo server tests: real Node `net` clients that verify every byte they get back. */
import * as assert from 'node:assert/strict';
import * as net from 'node:net';

/** A small seeded PRNG (mulberry32), so a failing case can be replayed. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(rand: () => number, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) bytes[i] = (rand() * 256) | 0;
  return bytes;
}

export interface ClientTarget {
  port?: number;
  host?: string;
  path?: string;
}

function connect(target: ClientTarget): net.Socket {
  return target.path !== undefined ? net.connect(target.path) : net.connect(target.port!, target.host ?? '127.0.0.1');
}

/**
 * Sends `payload` in pieces cut at random points, half-closes, and resolves with everything the
 * server sent back before its end-of-stream, once the client's socket has closed (so a leak check
 * right after sees no descriptor of it).
 */
export function echoOnce(target: ClientTarget, payload: Buffer, rand: () => number, maxPieces = 8): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(target);
    const received: Buffer[] = [];
    socket.on('data', (chunk) => received.push(chunk));
    socket.on('error', reject);
    socket.on('close', (hadError) => {
      if (!hadError) resolve(Buffer.concat(received));
    });
    socket.on('connect', () => {
      const cuts = new Set<number>();
      const pieces = 1 + Math.floor(rand() * maxPieces);
      for (let i = 1; i < pieces; i++) cuts.add(Math.floor(rand() * payload.length));
      let start = 0;
      for (const cut of [...cuts].sort((x, y) => x - y).concat(payload.length)) {
        if (cut > start) socket.write(payload.subarray(start, cut));
        start = cut;
      }
      socket.end();
    });
  });
}

/** `count` concurrent clients with random payloads of 1..maxBytes; asserts each got its bytes back. */
export async function concurrentEcho(target: ClientTarget, count: number, maxBytes: number, seed: number): Promise<number> {
  const rand = random(seed);
  const payloads = Array.from({ length: count }, () => randomBytes(rand, 1 + Math.floor(rand() * maxBytes)));
  const replies = await Promise.all(payloads.map((p) => echoOnce(target, p, rand)));
  let total = 0;
  replies.forEach((reply, i) => {
    assert.equal(reply.length, payloads[i].length, `client ${i} (seed ${seed}) got ${reply.length} of ${payloads[i].length} bytes`);
    assert.ok(reply.equals(payloads[i]), `client ${i} (seed ${seed}) got different bytes back`);
    total += reply.length;
  });
  return total;
}

/** Resolves once `predicate` holds, checking every few ms; rejects after `timeoutMs`. */
export function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = () => {
      if (predicate()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(check, 5);
    };
    check();
  });
}
