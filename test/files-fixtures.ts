/** Helpers for the file-transfer suites: files with known hashes, a server in this process, raw protocol clients. */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { TransferError } from '../lib/files/client';
import { decode, encode, Message, Reply } from '../lib/files/protocol';
import { FileServer, FileServerOptions } from '../lib/files/server';
import { Reactor } from '../lib/reactor';
import { frameHeader, LengthPrefixedDecoder } from '../lib/stream/framing';

const created: string[] = [];

export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `iomux-files-${prefix}-`));
  created.push(dir);
  return dir;
}

/** Removes every directory tempDir() made (tmpfs mounts are unmounted by their own tests first). */
export function removeTempDirs(): void {
  for (const dir of created.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Resolves once `file` holds at least `size` bytes, woken by the kernel's inotify events for its
 * directory (fs.watch), not by polling: the file grows as a server or client writes it.
 */
export function waitForSize(file: string, size: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const current = () => {
      try {
        return fs.statSync(file).size;
      } catch {
        return -1;
      }
    };
    const watcher = fs.watch(path.dirname(file), () => {
      const now = current();
      if (now >= size) {
        watcher.close();
        resolve(now);
      }
    });
    watcher.on('error', reject);
    const now = current();
    if (now >= size) {
      watcher.close();
      resolve(now);
    }
  });
}

/** The data file of the server's partial upload of `name` in `dir`. */
export function partialOf(dir: string, name: string): string {
  return path.join(dir, '.iomux-partial', `${createHash('sha256').update(name).digest('hex')}.data`);
}

/** Deterministic bytes (xorshift32 from `seed`): distinct seeds give distinct contents. */
export function pattern(size: number, seed: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes.writeUInt32LE(x >>> 0, i);
  }
  for (let i = size - (size % 4); i < size; i++) bytes[i] = i & 0xff;
  return bytes;
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function sha256File(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Writes `size` pattern bytes to `file`; returns them. */
export function writePattern(file: string, size: number, seed: number): Buffer {
  const bytes = pattern(size, seed);
  fs.writeFileSync(file, bytes);
  return bytes;
}

/** The partial directory's data files and their sizes. */
export function partials(dir: string): { file: string; size: number }[] {
  const partialDir = path.join(dir, '.iomux-partial');
  if (!fs.existsSync(partialDir)) return [];
  return fs.readdirSync(partialDir).filter((f) => f.endsWith('.data'))
    .map((f) => ({ file: path.join(partialDir, f), size: fs.statSync(path.join(partialDir, f)).size }));
}

/** A log that can be waited on: every line is kept, and a waiter resolves on the first line matching. */
export class Log {
  readonly lines: string[] = [];
  private waiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];

  readonly add = (line: string): void => {
    this.lines.push(line);
    for (const waiter of [...this.waiters]) {
      const m = line.match(waiter.pattern);
      if (m) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(m);
      }
    }
  };

  /** The first line (already logged, or to come) matching `pattern`. */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
    for (const line of this.lines) {
      const m = line.match(pattern);
      if (m) return Promise.resolve(m);
    }
    return new Promise((resolve) => this.waiters.push({ pattern, resolve }));
  }

  /** Lines matching `pattern` logged from now on only. */
  next(pattern: RegExp): Promise<RegExpMatchArray> {
    return new Promise((resolve) => this.waiters.push({ pattern, resolve }));
  }
}

export interface Served {
  server: FileServer;
  port: number;
  log: Log;
  close(): Promise<void>;
}

/** A FileServer on `reactor` (attached by the caller), on 127.0.0.1 and a free port. */
export function startServer(reactor: Reactor, dir: string, options: Partial<FileServerOptions> = {}): Served {
  const log = new Log();
  const server = new FileServer({ reactor, dir, log: log.add, ...options });
  const { port } = server.listen();
  return { server, port, log, close: () => server.close() };
}

/** A protocol client on a Node `net` socket that speaks frames by hand: for malformed input and half-done uploads. */
export class RawClient {
  readonly socket: net.Socket;
  readonly ended: Promise<void>;
  private readonly replies: Reply[] = [];
  /** The bytes of downloads received so far. */
  readonly body: Buffer[] = [];
  private waiting: ((reply: Reply | null) => void) | null = null;
  private over = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    const decoder: LengthPrefixedDecoder = new LengthPrefixedDecoder((body) => {
      const reply = decode(body) as Reply;
      // A download's bytes follow SENDING unframed.
      if (reply.type === 'sending') decoder.passThrough(reply.size - reply.offset, (bytes) => this.body.push(Buffer.from(bytes)));
      this.deliver(reply);
    }, { maxFrameSize: 4096 });
    socket.on('data', (data: Buffer) => decoder.push(data));
    // The server's end of stream: nothing more will come; finish our side too, as a client does.
    socket.once('end', () => {
      this.over = true;
      this.waiting?.(null);
      this.waiting = null;
      socket.end();
    });
    this.ended = new Promise((resolve) => {
      socket.once('close', () => {
        this.over = true;
        this.waiting?.(null);
        this.waiting = null;
        resolve();
      });
    });
    socket.on('error', () => undefined); // A reset after a refusal is expected; 'close' follows.
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  send(message: Message): void {
    const body = encode(message);
    this.socket.write(Buffer.concat([frameHeader(body.length), body]));
  }

  /** Raw bytes, exactly as given. */
  write(bytes: Buffer): Promise<void> {
    return new Promise((resolve) => this.socket.write(bytes, () => resolve()));
  }

  /** The next reply, or null if the connection closed first. */
  next(): Promise<Reply | null> {
    const reply = this.replies.shift();
    if (reply !== undefined) return Promise.resolve(reply);
    if (this.over) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private deliver(reply: Reply): void {
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = null;
      waiting(reply);
    } else {
      this.replies.push(reply);
    }
  }
}

/** Why a small tmpfs cannot be mounted here, or null when it can (the ENOSPC tests need one). */
export function tmpfsUnavailable(): string | null {
  if (process.platform !== 'linux') return 'tmpfs is Linux-only';
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const probe = tempDir('mount-probe');
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { encoding: 'utf8' });
  if (mounted.status !== 0) {
    fs.rmSync(probe, { recursive: true, force: true });
    return `mount -t tmpfs failed: ${(mounted.stderr || mounted.error?.message || '').trim()}`;
  }
  spawnSync('umount', [probe]);
  fs.rmSync(probe, { recursive: true, force: true });
  return null;
}

/** Mounts a tmpfs of `size` (e.g. '2m') on a new directory; returns it and how to grow and remove it. */
export function mountTmpfs(size: string): { dir: string; resize(size: string): void; unmount(): void } {
  const dir = tempDir('tmpfs');
  const run = (...args: string[]) => {
    const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  };
  run('mount', '-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir);
  return {
    dir,
    resize: (newSize) => run('mount', '-o', `remount,size=${newSize}`, dir),
    unmount: () => {
      run('umount', dir);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The reason a promise rejected with, as a TransferError. */
export async function failure(promise: Promise<unknown>): Promise<TransferError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof TransferError, `not a TransferError: ${String(err)}`);
    return err;
  }
  assert.fail('the transfer succeeded');
}

/** Asserts that `reply` is an ERROR with `code` (and a message matching `message`). */
export function expectError(reply: Reply | null, code: string, message?: RegExp): void {
  assert.ok(reply !== null, 'the connection closed without an answer');
  assert.equal(reply.type, 'error', `expected ERROR ${code}, got ${JSON.stringify(reply)}`);
  assert.equal(reply.code, code, reply.message);
  if (message) assert.match(reply.message, message);
}
