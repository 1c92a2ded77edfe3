/**
 * The seed's upload programs (examples/upload-*.ts) as they are: on a quiet loopback the echo round
 * trip keeps the size and the data apart and the upload "works"; a client that does not wait for
 * the echo makes the two arrive in one recv, and the seed's server misreads its header. The lab
 * scenario `sticky-packets` counts the same effect byte by byte.
 */
import * as assert from 'node:assert/strict';
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { removeTempDirs, tempDir } from './files-fixtures';

const EXAMPLES = path.resolve(__dirname, '..', 'examples');

function start(script: string, args: string[]): { child: ChildProcessWithoutNullStreams; out: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [path.join(EXAMPLES, script), ...args], { stdio: 'pipe' });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  return { child, out: () => out, exited };
}

function listening(server: ReturnType<typeof start>): Promise<number> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = /listening on 127\.0\.0\.1:(\d+)\n/.exec(server.out());
      if (m) {
        server.child.stdout.off('data', check);
        resolve(Number(m[1]));
      }
    };
    server.child.stdout.on('data', check);
    check();
    void server.exited.then(() => reject(new Error(`upload-server exited: ${server.out()}`)));
  });
}

describe('examples: the seed\'s naive upload (size, echo, data; an interruption; a resume from the client\'s guess)', function () {
  this.timeout(20000);
  after(removeTempDirs);

  it('works on a quiet loopback: one line, the "interruption", then the rest from the client\'s guess', async () => {
    const dir = tempDir('seed');
    const file = path.join(tempDir('seed-src'), 'notes.txt');
    const content = Array.from({ length: 200 }, (_, i) => `line ${i} of the seed's file\n`).join('');
    fs.writeFileSync(file, content);
    const server = start('upload-server.js', ['--dir', dir, '--port', '0', '--connections', '2']);
    const port = await listening(server);
    const client = start('upload-client.js', [file, '--port', String(port)]);
    assert.equal(await client.exited, 0, client.out());
    assert.match(client.out(), /sent one line \(26 bytes\), then broke off to simulate an interruption/);
    assert.match(client.out(), /resumed from byte 26 \(the client's guess; the server was never asked\)/);
    assert.equal(await server.exited, 0, server.out());
    assert.match(server.out(), /received 26 of 5490 bytes/);
    assert.match(server.out(), /received 5464 of 5464 bytes/);
    assert.equal(fs.readFileSync(path.join(dir, 'upload.bin'), 'utf8'), content);
  });

  it('a client that does not wait for the echo: the size and the data arrive in one recv, and the header is misread', async () => {
    const dir = tempDir('seed');
    const server = start('upload-server.js', ['--dir', dir, '--port', '0', '--connections', '1']);
    const port = await listening(server);
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        // Both in one write: TCP is a byte stream, and this is what the echo wait was hiding.
        socket.end('12line one of the file\n');
      });
      socket.on('error', reject);
      socket.on('close', () => resolve());
      socket.resume();
    });
    assert.equal(await server.exited, 0);
    assert.match(server.out(), /upload failed: invalid literal for int\(\) with base 10: "12line one of the file\\n"/);
    assert.ok(!fs.existsSync(path.join(dir, 'upload.bin')), 'nothing was stored');
  });
});
