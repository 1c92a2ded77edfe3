/**
 * examples/http-static.ts, run as written (a child process) against real clients: curl (GET, HEAD,
 * keep-alive across URLs, a 1 MiB file byte-exact, 404 and 405) and Python's http.client (keep-alive,
 * pipelining with a body in between, 400/405/413/431/505, and nothing served from outside the
 * directory: dot-dot, encoded, a symbolic link out, a FIFO).
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startChild, StartedChild } from './helpers';
import { requireTool } from './run-tool';

const example = path.resolve(__dirname, '..', 'examples', 'http-static.js');
const pythonClient = path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'http-client.py');

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 60000, maxBuffer: 16 * 1024 * 1024, encoding: 'latin1' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('examples: the HTTP/1.1 static-file server (examples/http-static.ts)', function () {
  this.timeout(60000);
  let dir: string;
  let served: StartedChild;
  let port: number;
  let bigHash: string;

  before(async function () {
    requireTool('curl', ['--version'], 'curl');
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-http-'));
    dir = path.join(base, 'www');
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'hello.txt'), 'hello\n');
    fs.writeFileSync(path.join(dir, 'sub', 'inner.txt'), 'inner\n');
    fs.writeFileSync(path.join(base, 'outside.txt'), 'secret\n');
    fs.symlinkSync(path.join(base, 'outside.txt'), path.join(dir, 'link-out'));
    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    fs.writeFileSync(path.join(dir, 'big.bin'), big);
    bigHash = createHash('sha256').update(big).digest('hex');
    await run('mkfifo', [path.join(dir, 'fifo')]);
    served = await startChild(process.execPath, [example, dir, '0'], /http on [^:]+:(\d+)/);
    port = Number(served.match[1]);
  });

  after(async () => {
    if (served === undefined) return;
    served.child.kill('SIGINT');
    assert.equal(await served.exited, 0);
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  });

  it('curl: GET and HEAD, two URLs over one kept-alive connection, a 1 MiB file byte-exact, 404 and 405', async () => {
    const base = `http://127.0.0.1:${port}`;
    const two = await run('curl', ['-sS', '-o', '/dev/null', '-o', '/dev/null', '-w', '%{http_code} %{num_connects}\\n',
      `${base}/hello.txt`, `${base}/sub/inner.txt`]);
    assert.equal(two.code, 0, two.stderr);
    assert.deepEqual(two.stdout.trim().split('\n'), ['200 1', '200 0'], 'the second URL reused the connection');
    const body = await run('curl', ['-sS', `${base}/big.bin`]);
    assert.equal(createHash('sha256').update(Buffer.from(body.stdout, 'latin1')).digest('hex'), bigHash);
    const head = await run('curl', ['-sS', '-I', `${base}/hello.txt`]);
    assert.match(head.stdout, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(head.stdout, /Content-Length: 6\r\n/);
    const missing = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `${base}/nope`]);
    assert.equal(missing.stdout, '404');
    const post = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--data', 'x=1', `${base}/hello.txt`]);
    assert.equal(post.stdout, '405');
    const escape = await run('curl', ['-sS', '--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', `${base}/../../etc/passwd`]);
    assert.equal(escape.stdout, '404');
  });

  it("Python's http.client: keep-alive, pipelining with a skipped body, 400/405/413/431/505, confinement", async () => {
    const result = await run('python3', [pythonClient, String(port), bigHash]);
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.deepEqual(result.stdout.trim().split('\n'), ['ok keep-alive', 'ok pipelining', 'ok errors', 'ok confinement']);
  });
});
