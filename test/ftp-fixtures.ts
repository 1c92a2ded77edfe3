/**
 * FTP test fixtures: a raw FTP client on Node `net` that shows every reply as the server sent it,
 * a server on an attached reactor in a fresh root with one user, and small file helpers.
 */
import * as assert from 'node:assert/strict';
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { FtpServer, FtpServerOptions } from '../lib/ftp/server';
import { TransferRecord } from '../lib/ftp/session';
import { UserStore } from '../lib/ftp/users';
import { Reactor } from '../lib/reactor';
import { createSelector, MechanismName } from '../lib/selectors/default';

export interface Reply {
  code: number;
  /** Every line, without line ends. */
  lines: string[];
  /** The text of the last line (after the code). */
  text: string;
}

/** A minimal FTP client: commands and replies exactly as on the wire. */
export class FtpClient {
  private buffered = '';
  private readonly replies: Reply[] = [];
  private readonly waiting: { resolve: (reply: Reply) => void; reject: (err: Error) => void }[] = [];
  private partial: string[] = [];
  private ended = false;
  readonly closed: Promise<void>;
  greeting!: Reply;

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.receive(text));
    socket.on('error', () => undefined); // A reset shows as 'close'; tests check what they expect.
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.ended = true;
      for (const waiter of this.waiting.splice(0)) waiter.reject(new Error(`connection closed; unparsed: ${JSON.stringify(this.buffered)}`));
      resolve();
    }));
  }

  static async connect(port: number, options: { host?: string; localAddress?: string } = {}): Promise<FtpClient> {
    const socket = net.connect({ port, host: options.host ?? '127.0.0.1', localAddress: options.localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new FtpClient(socket);
    client.greeting = await client.reply();
    return client;
  }

  get isClosed(): boolean {
    return this.ended;
  }

  send(line: string | Buffer): void {
    this.socket.write(typeof line === 'string' ? `${line}\r\n` : line);
  }

  /** The next complete reply. */
  reply(): Promise<Reply> {
    const ready = this.replies.shift();
    if (ready) return Promise.resolve(ready);
    if (this.ended) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  async command(line: string): Promise<Reply> {
    this.send(line);
    return this.reply();
  }

  /** Sends `line` and checks the reply's code. */
  async expect(line: string, code: number): Promise<Reply> {
    const reply = await this.command(line);
    assert.equal(reply.code, code, `${line.split(' ')[0]}: ${reply.lines.join(' | ')}`);
    return reply;
  }

  async login(user: string, password: string): Promise<void> {
    await this.expect(`USER ${user}`, 331);
    await this.expect(`PASS ${password}`, 230);
  }

  /** EPSV, then a connection to the port it names. */
  async passive(): Promise<net.Socket> {
    const reply = await this.expect('EPSV', 229);
    const port = Number(/\(\|\|\|(\d+)\|\)/.exec(reply.text)![1]);
    return connectTo(port);
  }

  /** A whole RETR (or LIST/NLST/MLSD): the bytes, and the final reply. */
  async download(command: string): Promise<{ data: Buffer; reply: Reply }> {
    const data = await this.passive();
    const received = readAll(data);
    await this.expect(command, 150);
    const [bytes, reply] = await Promise.all([received, this.reply()]);
    return { data: bytes, reply };
  }

  /** A whole STOR/APPE of `body`, and the final reply. */
  async upload(command: string, body: Buffer): Promise<Reply> {
    const data = await this.passive();
    await this.expect(command, 150);
    data.end(body);
    return this.reply();
  }

  async quit(): Promise<void> {
    if (this.ended) return;
    await this.expect('QUIT', 221);
    this.socket.end();
    await this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private receive(text: string): void {
    this.buffered += text;
    for (let end = this.buffered.indexOf('\r\n'); end >= 0; end = this.buffered.indexOf('\r\n')) {
      const line = this.buffered.slice(0, end);
      this.buffered = this.buffered.slice(end + 2);
      this.partial.push(line);
      const first = this.partial[0];
      const code = first.slice(0, 3);
      const complete = this.partial.length === 1 ? first[3] !== '-' : line.startsWith(`${code} `);
      if (!complete) continue;
      assert.match(first, /^\d{3}[ -]/, `a reply starts with a code: ${JSON.stringify(first)}`);
      const reply: Reply = { code: Number(code), lines: this.partial, text: line.slice(4) };
      this.partial = [];
      const waiter = this.waiting.shift();
      if (waiter) waiter.resolve(reply);
      else this.replies.push(reply);
    }
  }
}

export function connectTo(port: number, options: { host?: string; localAddress?: string } = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: options.host ?? '127.0.0.1', localAddress: options.localAddress, allowHalfOpen: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Everything `socket` receives until its end of stream (then ends our side too). */
export function readAll(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => {
      socket.end();
      resolve(Buffer.concat(chunks));
    });
    socket.once('error', reject);
  });
}

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

export function sha256File(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** `size` bytes that differ block by block (a misplaced block changes the hash). */
export function pattern(size: number, seed = 1): Buffer {
  const data = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    data.writeUInt32LE(x, i);
  }
  for (let i = size - (size % 4); i < size; i++) data[i] = i & 0xff;
  return data;
}

export const USER = 'alice';
export const PASSWORD = 'correct horse battery staple';

/** A store with the test user; scrypt hashes made once per process (each costs ~50 ms). */
export function makeUsersFile(dir: string): string {
  const file = path.join(dir, 'users.json');
  const store = new UserStore(file);
  if (!store.has(USER)) store.add(USER, PASSWORD);
  return file;
}

export interface TestServer {
  server: FtpServer;
  reactor: Reactor;
  port: number;
  /** The directory above the root: the host's side of the fence. */
  base: string;
  root: string;
  /** alice's home. */
  home: string;
  log: string[];
  /** The next 'transfer' event that matches. */
  nextTransfer(match?: (record: TransferRecord) => boolean): Promise<TransferRecord>;
  connect(options?: { localAddress?: string }): Promise<FtpClient>;
  /** Connected and logged in as alice. */
  login(): Promise<FtpClient>;
  stop(): Promise<void>;
}

/** An FtpServer on an attached reactor, in a fresh root with alice's home ready. */
export async function startServer(options: Partial<FtpServerOptions> & { mechanism?: MechanismName } = {}): Promise<TestServer> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-ftp-'));
  const root = path.join(base, 'root');
  const home = path.join(root, USER);
  fs.mkdirSync(home, { recursive: true });
  const log: string[] = [];
  const reactor = new Reactor(createSelector(options.mechanism ?? (process.platform === 'linux' ? 'epoll' : 'poll')));
  const server = new FtpServer({
    root, users: makeUsersFile(base), port: 0, login: { delayMs: 10 }, ...options, reactor,
    log: (line) => log.push(line),
  });
  const { port } = server.listen();
  reactor.attach();
  const clients: FtpClient[] = [];
  const connect = async (connectOptions: { localAddress?: string } = {}) => {
    const client = await FtpClient.connect(port, connectOptions);
    clients.push(client);
    return client;
  };
  return {
    server, reactor, port, base, root, home, log,
    nextTransfer: (match = () => true) => new Promise((resolve) => {
      const listener = (record: TransferRecord) => {
        if (!match(record)) return;
        server.off('transfer', listener);
        resolve(record);
      };
      server.on('transfer', listener);
    }),
    connect,
    async login() {
      const client = await connect();
      await client.login(USER, PASSWORD);
      return client;
    },
    async stop() {
      for (const client of clients) client.destroy();
      await Promise.all(clients.map((c) => c.closed));
      await new Promise<void>((resolve) => server.shutdown(0, resolve));
      server.close();
      reactor.close();
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}

const cli = path.resolve(__dirname, '..', 'tools', 'cli.js');

/** Runs `iomux ARGS` to its end (stdin: `stdin`, or nothing). */
export function iomux(args: string[], stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [cli, ...args], { timeout: 20000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0, stdout, stderr });
    });
    if (stdin !== undefined) child.stdin!.end(stdin);
    else child.stdin!.end();
  });
}

export interface Served {
  child: ChildProcess;
  port: number;
  /** stdout and stderr so far, interleaved as they came. */
  output: () => string;
  exited: Promise<number | null>;
}

/**
 * `iomux ftp serve ARGS` in a process of its own, once it prints its listening line: a test that
 * could freeze the server (a blocking open) then cannot freeze the test runner with it.
 */
export function serve(args: string[]): Promise<Served> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, 'ftp', 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((done) => child.once('exit', done));
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^listening on (?:127\.0\.0\.1|\[::1\]):(\d+)$/m.exec(out);
      if (m) resolve({ child, port: Number(m[1]), output: () => out, exited });
    });
    child.stderr!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.once('exit', (code) => reject(new Error(`iomux ftp serve exited (${code}) before listening: ${out}`)));
  });
}
