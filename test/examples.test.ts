/**
 * The seed's first example, end to end: the greeting server and the interactive client run as
 * real child processes and talk over loopback; the test types into the client's stdin and reads
 * its stdout. Every child is bounded by a deadline and killed if it overstays.
 */
import * as assert from 'node:assert/strict';
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as path from 'node:path';
import { binding, constants } from '../lib/native';
import { Socket } from '../lib/socket';
import { LineReader } from '../examples/line-reader';
import { GREETING } from '../examples/greeting-server';
import { leakedSince, openKernelObjects } from './helpers';

const EXAMPLES = path.resolve(__dirname, '..', 'examples');
/** How long any one step may take before the test fails (and its children are killed). */
const STEP_MS = 10000;

/** A running example with everything it has printed so far. */
class Program {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcessWithoutNullStreams;
  private waiters: Array<() => void> = [];

  constructor(script: string, args: string[]) {
    this.child = spawn(process.execPath, [path.join(EXAMPLES, script), ...args], { stdio: 'pipe' });
    this.child.stdout.setEncoding('utf8').on('data', (text: string) => this.append('stdout', text));
    this.child.stderr.setEncoding('utf8').on('data', (text: string) => this.append('stderr', text));
    this.exited = new Promise((resolve, reject) => {
      this.child.once('error', reject);
      this.child.once('close', (code) => {
        this.notify();
        resolve(code);
      });
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Types one line into the program's stdin. */
  type(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  endInput(): void {
    this.child.stdin.end();
  }

  /** Resolves once stdout matches; fails with everything printed so far when the deadline passes. */
  async waitForStdout(test: RegExp | string): Promise<RegExpMatchArray | null> {
    const matches = (): boolean => (typeof test === 'string' ? this.stdout.endsWith(test) : test.test(this.stdout));
    await this.until(matches, `stdout to match ${String(test)}`);
    return typeof test === 'string' ? null : this.stdout.match(test);
  }

  /** The exit code, within the deadline. */
  async exitCode(): Promise<number | null> {
    await this.until(() => !this.running, 'the process to exit');
    return this.exited;
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }

  private append(stream: 'stdout' | 'stderr', text: string): void {
    this[stream] += text;
    this.notify();
  }

  private notify(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  private async until(done: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + STEP_MS;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out waiting for ${what}; stdout: ${JSON.stringify(this.stdout)}, stderr: ${JSON.stringify(this.stderr)}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

describe('examples: the greeting server and client', function () {
  const programs: Program[] = [];
  let atStart: Map<number, string>;

  function start(script: 'greeting-server.js' | 'greeting-client.js', ...args: string[]): Program {
    const program = new Program(script, args);
    programs.push(program);
    return program;
  }

  /** Starts a server on a free port and returns it with the port it printed. */
  async function startServer(...args: string[]): Promise<[Program, string, number]> {
    const server = start('greeting-server.js', '--port', '0', ...args);
    const match = await server.waitForStdout(/^listening on (\[[^\]]+\]|[^:\s]+):(\d+)\n/);
    const host = match![1].replace(/^\[|\]$/g, '');
    return [server, host, Number(match![2])];
  }

  /** Types each line, waiting for its reply before the next, the way a person would. */
  async function converse(client: Program, exchanges: Array<[string, string]>): Promise<void> {
    await client.waitForStdout(`${GREETING}\n`);
    for (const [line, reply] of exchanges) {
      client.type(line);
      await client.waitForStdout(`${reply}\n`);
    }
  }

  before(() => {
    atStart = openKernelObjects();
  });

  afterEach(async function () {
    const survivors = programs.splice(0).filter((p) => p.running);
    for (const p of survivors) p.kill();
    await Promise.all(survivors.map((p) => p.exited.catch(() => null)));
    if (this.currentTest?.state === 'passed') assert.deepEqual(survivors.length, 0, 'a child process was still running');
  });

  after(() => {
    assert.deepEqual(leakedSince(atStart), [], 'descriptors leaked by the examples tests');
  });

  it('greets, answers every line (non-ASCII too) with the suffix until q, then serves the next client', async function () {
    const [server, , port] = await startServer('--clients', '2');

    const first = start('greeting-client.js', '--port', String(port), '--timeout', String(STEP_MS));
    await converse(first, [
      ['hello', 'hello hello'],
      ['你好，世界 🌏', '你好，世界 🌏 hello'],
      ['', ' hello'],
    ]);
    first.type('q');
    assert.equal(await first.exitCode(), 0);
    assert.equal(first.stdout, `${GREETING}\nhello hello\n你好，世界 🌏 hello\n hello\n`);
    assert.equal(first.stderr, '');

    // The second client ends its input without `q`: the client says it for it, and the server finishes.
    const second = start('greeting-client.js', '--port', String(port), '--timeout', String(STEP_MS));
    await converse(second, [['second client', 'second client hello']]);
    second.endInput();
    assert.equal(await second.exitCode(), 0);
    assert.equal(second.stdout, `${GREETING}\nsecond client hello\n`);

    assert.equal(await server.exitCode(), 0, 'the server exits by itself after --clients 2');
    const log = server.stdout.split('\n').filter(Boolean);
    assert.match(log[0], /^listening on 127\.0\.0\.1:\d+$/);
    assert.deepEqual(log.slice(1).map((l) => l.replace(/^\S+ /, '')), ['connected', 'left', 'connected', 'left']);
  });

  it('--suffix sets the reply\'s suffix, and both programs work over IPv6', async function () {
    const [server, host, port] = await startServer('--host', '::1', '--suffix', ' 好好', '--clients', '1');
    assert.equal(host, '::1', 'printed as [::1]:PORT');
    const client = start('greeting-client.js', '--host', '::1', '--port', String(port), '--timeout', String(STEP_MS));
    await converse(client, [['hello', 'hello 好好'], ['好', '好 好好']]);
    client.type('q');
    assert.equal(await client.exitCode(), 0);
    assert.equal(client.stdout, `${GREETING}\nhello 好好\n好 好好\n`);
    assert.equal(await server.exitCode(), 0);
  });

  it('line framing: a line sent one byte at a time (UTF-8 split mid-character) is answered whole, and a client that just leaves does not stop the server', async function () {
    const [server, , port] = await startServer('--suffix', ' 好好', '--clients', '2');
    const line = '好好 split';

    const raw = new Socket(constants.AF_INET, constants.SOCK_STREAM);
    try {
      raw.setTimeout(STEP_MS);
      raw.connect('127.0.0.1', port);
      raw.setsockopt(constants.IPPROTO_TCP, constants.TCP_NODELAY, true);
      // chunkSize 1: the reply, too, is decoded from one-byte receives.
      const replies = new LineReader(raw, 1);
      assert.equal(replies.readLine(), GREETING);
      for (const byte of Buffer.from(`${line}\r\n`)) {
        raw.sendAll(Buffer.of(byte));
        await new Promise((resolve) => setTimeout(resolve, 2)); // Separate segments, so the server's reads split too.
      }
      assert.equal(replies.readLine(), `${line} 好好`);
    } finally {
      raw.close(); // Leaves without `q`.
    }

    const next = new Socket(constants.AF_INET, constants.SOCK_STREAM);
    try {
      next.setTimeout(STEP_MS);
      next.connect('127.0.0.1', port);
      const replies = new LineReader(next);
      assert.equal(replies.readLine(), GREETING, 'the server moved on to the next client');
      next.sendAll('q\n');
      assert.equal(replies.readLine(), null, 'q: the server closes the connection');
    } finally {
      next.close();
    }
    assert.equal(await server.exitCode(), 0);
  });

  it('the client reports a refused connection on stderr and exits 1', async function () {
    const probe = new Socket();
    probe.bind('127.0.0.1', 0);
    const port = probe.getsockname().port;
    probe.close();
    const client = start('greeting-client.js', '--port', String(port));
    client.endInput();
    assert.equal(await client.exitCode(), 1);
    assert.equal(client.stderr, `greeting-client: connect ECONNREFUSED 127.0.0.1:${port}\n`);
    assert.equal(client.stdout, '');
  });

  it('the client with --timeout gives up on a server that never greets', async function () {
    // A listener that never accepts: the kernel completes the handshake, nobody ever speaks.
    const silent = new Socket();
    try {
      silent.bind('127.0.0.1', 0);
      silent.listen();
      const client = start('greeting-client.js', '--port', String(silent.getsockname().port), '--timeout', '100');
      assert.equal(await client.exitCode(), 1);
      assert.equal(client.stderr, 'greeting-client: recv timed out after 100 ms\n');
    } finally {
      silent.close();
    }
  });

  it('the server refuses a bad --port before opening anything', async function () {
    const server = start('greeting-server.js', '--port', '70000');
    assert.notEqual(await server.exitCode(), 0);
    assert.match(server.stderr, /--port.*must be an integer from 0 to 65535/);
  });
});

describe('examples: LineReader', function () {
  function pair(): [Socket, Socket] {
    const [a, b] = binding.socketpair!(constants.AF_UNIX, constants.SOCK_STREAM);
    return [Socket.fromFd(a, constants.AF_UNIX), Socket.fromFd(b, constants.AF_UNIX)];
  }

  it('splits at \\n (dropping \\r), decodes characters cut across receives, and returns a last unterminated line', function () {
    const [writer, reader] = pair();
    try {
      writer.sendAll('a\r\n好好\n\nlast 🌏');
      writer.shutdown('write');
      const lines = new LineReader(reader, 1);
      const got: Array<string | null> = [];
      for (let i = 0; i < 5; i++) got.push(lines.readLine());
      assert.deepEqual(got, ['a', '好好', '', 'last 🌏', null]);
    } finally {
      writer.close();
      reader.close();
    }
  });

  it('a line longer than the limit is a RangeError, not unbounded memory', function () {
    const [writer, reader] = pair();
    try {
      writer.sendAll(Buffer.alloc(300, 'x'));
      const lines = new LineReader(reader, 64, 100);
      assert.throws(() => lines.readLine(), RangeError);
    } finally {
      writer.close();
      reader.close();
    }
  });
});
