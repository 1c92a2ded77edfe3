/**
 * The seed's own client against `--suffix hello`: one `sendall` and then ONE `recv` per line,
 * expecting `line + "hello"`. That only works if a reply and its suffix leave in one send (one
 * segment): with two sends the client can read the reply alone and take the suffix for the answer
 * to its next line. Python's socket module is the client, as in the seed; strace counts the
 * server's send calls, which is what makes the promise exact rather than likely.
 */
import * as assert from 'node:assert/strict';
import { ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EchoServer, WriteStrategy } from '../lib/echo/server';
import { Reactor } from '../lib/reactor';
import { makeSelector, selectorVariants } from './fixtures';
import { startChild } from './helpers';

const LINES = 200;

/** The seed's client loop, in Python, against 127.0.0.1:port; prints "ok N" or the first mismatch. */
const SEED_CLIENT = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect(('127.0.0.1', int(sys.argv[1])))
for i in range(int(sys.argv[2])):
    line = ('line %d' % i).encode()
    s.sendall(line)
    data = s.recv(1024)
    if data != line + b'hello':
        print('mismatch at line %d: %r' % (i, data))
        sys.exit(1)
s.close()
print('ok %s' % sys.argv[2])
`;

function python(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', SEED_CLIENT, ...args], { timeout: 30000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${stdout}${stderr}${err.message}`));
      else resolve(stdout.trim());
    });
  });
}

describe('echo server: the seed client (one recv per sendall) with --suffix hello', function () {
  this.timeout(60000);

  for (const variant of selectorVariants()) {
    for (const write of ['direct', 'queued'] as WriteStrategy[]) {
      it(`${variant.name}, ${write}: reads "line N" + "hello" for every one of ${LINES} lines`, async () => {
        const reactor = new Reactor(makeSelector(variant));
        const server = new EchoServer({ reactor, write, suffix: 'hello' });
        const { port } = server.listen();
        reactor.attach();
        try {
          assert.equal(await python([String(port), String(LINES)]), `ok ${LINES}`);
        } finally {
          server.close();
          reactor.close();
        }
      });
    }
  }

  it('each reply and its suffix leave in one send call (strace counts them), on every mechanism', async function () {
    if (spawnSync('strace', ['-V']).status !== 0) throw new Error('this test needs strace (apt-get install strace; .ci/run installs it)');
    const cli = path.resolve(__dirname, '..', 'tools', 'cli.js');
    for (const args of selectorVariants().map((v) => ['--mechanism', v.mechanism, ...(v.options.edgeTriggered ? ['--edge'] : [])])) {
      const { child: server, match, exited: serverExited } = await startChild(process.execPath,
        [cli, 'serve', ...args, '--port', '0', '--suffix', 'hello', '--quiet'], /listening on [^:]+:(\d+)/);
      const port = Number(match[1]);
      const trace = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-strace-')), 'trace');
      let tracer: ChildProcess | null = null;
      try {
        // Attach to every thread of the running server (the reactor runs on a worker thread).
        tracer = spawn('strace', ['-f', '-e', 'trace=sendto,sendmsg,writev', '-o', trace, '-p', String(server.pid)],
          { stdio: ['ignore', 'ignore', 'pipe'] });
        const traced = tracer;
        await new Promise<void>((resolve, reject) => {
          let text = '';
          traced.stderr!.on('data', (d: Buffer) => {
            text += d.toString();
            // strace -f -p attaches to every thread first, then says "Process N attached with T threads".
            if (/attached/.test(text)) resolve();
          });
          traced.once('exit', (code) => reject(new Error(`strace exited (${code}): ${text}`)));
        });
        const tracerExited = new Promise<void>((resolve) => traced.once('exit', () => resolve()));
        assert.equal(await python([String(port), '50']), 'ok 50');
        server.kill('SIGTERM');
        assert.equal(await serverExited, 0);
        await tracerExited;
      } finally {
        server.kill('SIGKILL');
        tracer?.kill('SIGKILL');
      }
      const calls = fs.readFileSync(trace, 'utf8').split('\n').filter((l) => /\b(sendto|sendmsg|writev)\(/.test(l) && /line \d/.test(l));
      fs.rmSync(path.dirname(trace), { recursive: true, force: true });
      assert.equal(calls.length, 50, `${args.join(' ')}: one send per reply, got ${calls.length}:\n${calls.slice(0, 6).join('\n')}`);
      assert.ok(calls.every((l) => /hello/.test(l)), 'every send carries its suffix');
    }
  });
});
