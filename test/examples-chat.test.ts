/**
 * docs/streams.md's custom server (examples/chat-server.ts), run as written: a child process,
 * real `net` clients, broadcast, /quit, an oversize line closing that client alone, and SIGINT.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { startChild } from './helpers';

/**
 * A Python client that sends `/quit`, reads until the server's end of stream, then keeps its socket
 * open (half-open: it never closes its side) until told to go on stdin.
 */
const HALF_OPEN_QUITTER = `
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
f = s.makefile('rb')
print(f.readline().decode().strip(), flush=True)
s.sendall(b'/quit\\n')
while f.read(4096):
    pass
print('eof, staying half-open', flush=True)
sys.stdin.readline()
s.close()
`;

/** A client that collects lines; `line()` resolves with the next one. */
class ChatClient {
  private buffered = '';
  private readonly waiting: ((line: string) => void)[] = [];
  private readonly lines: string[] = [];
  readonly socket: net.Socket;
  readonly closed: Promise<void>;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setEncoding('utf8');
    this.socket.on('data', (text: string) => {
      this.buffered += text;
      for (let i = this.buffered.indexOf('\n'); i >= 0; i = this.buffered.indexOf('\n')) {
        const line = this.buffered.slice(0, i);
        this.buffered = this.buffered.slice(i + 1);
        const take = this.waiting.shift();
        if (take) take(line);
        else this.lines.push(line);
      }
    });
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  line(): Promise<string> {
    const ready = this.lines.shift();
    return ready !== undefined ? Promise.resolve(ready) : new Promise((resolve) => this.waiting.push(resolve));
  }
}

describe('examples: the chat server of docs/streams.md', function () {
  this.timeout(20000);

  it('broadcasts lines, lets /quit leave, closes an oversize line\'s sender alone, and stops on SIGINT', async () => {
    const { child, match, exited } = await startChild(process.execPath,
      [path.resolve(__dirname, '..', 'examples', 'chat-server.js'), '0'], /chat on [^:]+:(\d+)/);
    const port = Number(match[1]);
    try {
      const alice = new ChatClient(port);
      assert.equal(await alice.line(), 'welcome; 0 other(s) here');
      const bob = new ChatClient(port);
      assert.equal(await bob.line(), 'welcome; 1 other(s) here');
      const mallory = new ChatClient(port);
      assert.equal(await mallory.line(), 'welcome; 2 other(s) here');

      alice.socket.write('hello ');
      alice.socket.write('bob\r\nsecond line\n'); // Split and merged on purpose: framing sorts it out.
      assert.equal(await bob.line(), 'hello bob');
      assert.equal(await bob.line(), 'second line');
      assert.equal(await mallory.line(), 'hello bob');
      assert.equal(await mallory.line(), 'second line');

      mallory.socket.write(`${'x'.repeat(2000)}\n`);
      await mallory.closed; // Over 1 KiB: closed, and nobody got it.
      bob.socket.write('/quit\n');
      await bob.closed;
      alice.socket.write('anyone?\n');
      alice.socket.end();
      await alice.closed;

      child.kill('SIGINT');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a client that quits and stays half-open (Python) harms no one: the others keep talking, nobody is disconnected', async () => {
    const { child, match, exited } = await startChild(process.execPath,
      [path.resolve(__dirname, '..', 'examples', 'chat-server.js'), '0'], /chat on [^:]+:(\d+)/);
    const port = Number(match[1]);
    try {
      const alice = new ChatClient(port);
      assert.equal(await alice.line(), 'welcome; 0 other(s) here');
      const bob = new ChatClient(port);
      assert.equal(await bob.line(), 'welcome; 1 other(s) here');
      const quitter = spawn('python3', ['-c', HALF_OPEN_QUITTER, String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
      const quitterExited = new Promise((resolve) => quitter.once('close', resolve));
      const quitterLines: string[] = [];
      const quitterSaid = (text: string): Promise<void> => new Promise((resolve) => {
        const check = (): void => {
          if (quitterLines.includes(text)) resolve();
          else quitter.stdout!.once('data', (d: Buffer) => { quitterLines.push(...d.toString().trim().split('\n')); check(); });
        };
        check();
      });
      await quitterSaid('welcome; 2 other(s) here');
      await quitterSaid('eof, staying half-open'); // Our close() reached it; it keeps its side open.
      // The others talk while the quitter lingers half-open: broadcasts skip it, nobody is destroyed.
      for (let i = 0; i < 5; i++) {
        alice.socket.write(`from alice ${i}\n`);
        assert.equal(await bob.line(), `from alice ${i}`);
        bob.socket.write(`from bob ${i}\n`);
        assert.equal(await alice.line(), `from bob ${i}`);
      }
      assert.equal(alice.socket.destroyed || bob.socket.destroyed, false);
      quitter.stdin!.end('go\n');
      await quitterExited;
      alice.socket.end();
      bob.socket.end();
      await Promise.all([alice.closed, bob.closed]);
      child.kill('SIGINT');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
