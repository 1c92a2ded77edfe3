/**
 * Real FTP clients against the server: Python's ftplib (the whole session, an upload killed at
 * half and resumed with REST, a resumed download, every confinement attempt), curl (-T, -C - both
 * ways, --list-only, a wrong password), basic-ftp from Node, and lftp. A client that is not
 * installed fails its test with the package to install: nothing is skipped.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { Client as BasicFtp } from 'basic-ftp';
import { pattern, PASSWORD, sha256, sha256File, startServer, TestServer, USER } from './ftp-fixtures';
import { requireTool, run } from './run-tool';
import { leakedSince, openKernelObjects } from './helpers';

const ftplibClient = path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'ftplib-client.py');

describe('ftp with real clients', function () {
  this.timeout(60000);
  let t: TestServer;
  let descriptorsBefore: Map<number, string>;
  let work: string;

  beforeEach(async () => {
    descriptorsBefore = openKernelObjects();
    t = await startServer({ dataTimeoutMs: 10000 });
    work = path.join(t.base, 'client');
    fs.mkdirSync(work);
    fs.writeFileSync(path.join(t.base, 'secret.txt'), 'not for alice');
    fs.symlinkSync(t.base, path.join(t.home, 'escape'));
    fs.symlinkSync(path.join(t.base, 'secret.txt'), path.join(t.home, 'escape-file'));
    fs.writeFileSync(path.join(t.home, 'mine.txt'), 'alice');
  });

  afterEach(async () => {
    assert.equal(fs.readFileSync(path.join(t.base, 'secret.txt'), 'utf8'), 'not for alice');
    await t.stop();
    assert.deepEqual(leakedSince(descriptorsBefore), []);
  });

  describe('Python ftplib', () => {
    before(() => requireTool('python3', ['-c', 'import ftplib'], 'python3'));

    it('the whole session: login, mkdir/cwd/pwd, byte-exact transfers, a resumed download, ABOR as urgent data, rename/delete/nlst/mlsd, confinement', async () => {
      fs.writeFileSync(path.join(work, 'source.bin'), pattern(24 * 1024 * 1024, 11));
      const { code, stdout, stderr } = await run('python3', [ftplibClient, String(t.port), USER, PASSWORD, 'session', work]);
      assert.equal(code, 0, `ftplib session failed:\n${stdout}\n${stderr}`);
      assert.deepEqual(stdout.trim().split('\n'), ['login', 'mkdir-cwd-pwd', 'upload-download', 'resumed-download', 'abort-urgent',
        'rename-delete-nlst-mlsd', 'confinement', 'listing-root'].map((s) => `ok ${s}`));
      assert.deepEqual(fs.readdirSync(path.join(t.home, 'docs')), ['lines.txt']);
      // TYPE A: ftplib's CRLF lines are stored with the host's LF.
      assert.equal(fs.readFileSync(path.join(t.home, 'docs', 'lines.txt'), 'utf8'), 'first line\nsecond line\nüber 日本\n');
    });

    it('an upload killed at about 50% is resumed with SIZE + REST + STOR to an identical SHA-256', async () => {
      const source = path.join(work, 'big.bin');
      fs.writeFileSync(source, pattern(16 * 1024 * 1024, 5));
      const stored = t.nextTransfer((r) => r.command === 'STOR' && r.path === '/big.bin');
      const uploader = spawn('python3', [ftplibClient, String(t.port), USER, PASSWORD, 'upload-half', source, 'big.bin'],
        { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise((resolve) => uploader.once('exit', resolve));
      const half = await new Promise<number>((resolve, reject) => {
        let out = '';
        uploader.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /^half (\d+)$/m.exec(out);
          if (m) resolve(Number(m[1]));
        });
        uploader.once('exit', (code) => reject(new Error(`the uploader exited (${code}) before half: ${out}`)));
      });
      uploader.kill('SIGKILL');
      await exited;
      // In stream mode the end of the data connection is the end of the file: the server keeps what came.
      const record = await stored;
      assert.equal(record.bytes, half);
      assert.equal(fs.statSync(path.join(t.home, 'big.bin')).size, half);
      const { code, stdout, stderr } = await run('python3', [ftplibClient, String(t.port), USER, PASSWORD, 'resume-upload', source, 'big.bin']);
      assert.equal(code, 0, `resume failed:\n${stdout}\n${stderr}`);
      assert.match(stdout, new RegExp(`^resumed-from ${half}$`, 'm'));
      assert.equal(/^sha256 (\w+)$/m.exec(stdout)![1], sha256File(source));
      assert.equal(sha256File(path.join(t.home, 'big.bin')), sha256File(source));
    });
  });

  describe('curl', () => {
    before(() => requireTool('curl', ['--version'], 'curl'));
    const url = (t: TestServer, file = '') => `ftp://127.0.0.1:${t.port}/${file}`;
    const auth = ['-u', `${USER}:${PASSWORD}`, '-sS'];

    it('-T uploads, a plain GET downloads, byte-exact', async () => {
      const source = path.join(work, 'up.bin');
      fs.writeFileSync(source, pattern(5 * 1024 * 1024, 2));
      assert.equal((await run('curl', [...auth, '-T', source, url(t, 'up.bin')])).code, 0);
      assert.equal(sha256File(path.join(t.home, 'up.bin')), sha256File(source));
      const out = path.join(work, 'down.bin');
      assert.equal((await run('curl', [...auth, '-o', out, url(t, 'up.bin')])).code, 0);
      assert.equal(sha256File(out), sha256File(source));
    });

    it('-C - resumes an upload (SIZE, then APPE) and a download (REST), byte-exact', async () => {
      const source = pattern(6 * 1024 * 1024, 3);
      fs.writeFileSync(path.join(work, 'full.bin'), source);
      fs.writeFileSync(path.join(t.home, 'partial-up.bin'), source.subarray(0, 2_500_000)); // What an interrupted upload left.
      const up = await run('curl', [...auth, '-C', '-', '-T', path.join(work, 'full.bin'), url(t, 'partial-up.bin')]);
      assert.equal(up.code, 0, up.stderr);
      assert.equal(sha256File(path.join(t.home, 'partial-up.bin')), sha256(source));
      fs.writeFileSync(path.join(t.home, 'whole.bin'), source);
      const partial = path.join(work, 'partial-down.bin');
      fs.writeFileSync(partial, source.subarray(0, 1_234_567)); // What an interrupted download left.
      const down = await run('curl', [...auth, '-C', '-', '-o', partial, url(t, 'whole.bin')]);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(sha256File(partial), sha256(source));
      const resumed = t.log.filter((l) => /RETR \/whole\.bin completed/.test(l));
      assert.match(resumed[0], new RegExp(`bytes=${source.length - 1_234_567} `), 'only the rest was sent');
    });

    it('--list-only lists names (NLST); a wrong password makes curl exit non-zero', async () => {
      fs.mkdirSync(path.join(t.home, 'sub'));
      const list = await run('curl', [...auth, '--list-only', url(t)]);
      assert.equal(list.code, 0);
      assert.deepEqual(list.stdout.trim().split(/\r?\n/).sort(), ['mine.txt', 'sub']);
      const wrong = await run('curl', ['-u', `${USER}:not-the-password`, '-sS', url(t)]);
      assert.notEqual(wrong.code, 0);
      assert.equal(wrong.code, 67, `curl's "login denied" (67); stderr: ${wrong.stderr}`);
      const outside = await run('curl', [...auth, url(t, '..%2fsecret.txt')]);
      assert.notEqual(outside.code, 0);
      assert.ok(!outside.stdout.includes('not for alice'));
    });
  });

  describe('basic-ftp (npm)', () => {
    it('the same round trip from Node: mkdir, cd, pwd, upload, download, list, size, resumed download and upload, rename, delete', async () => {
      const client = new BasicFtp(10000);
      try {
        await client.access({ host: '127.0.0.1', port: t.port, user: USER, password: PASSWORD });
        await client.ensureDir('/a/b');
        assert.equal(await client.pwd(), '/a/b');
        const body = pattern(3 * 1024 * 1024, 9);
        await client.uploadFrom(Readable.from([body]), 'file.bin');
        const collect = () => {
          const chunks: Buffer[] = [];
          const sink = new Writable({ write(chunk: Buffer, _enc, done) { chunks.push(chunk); done(); } });
          return { sink, bytes: () => Buffer.concat(chunks) };
        };
        const whole = collect();
        await client.downloadTo(whole.sink, 'file.bin');
        assert.equal(sha256(whole.bytes()), sha256(body));
        const listing = await client.list();
        assert.deepEqual(listing.map((f) => [f.name, f.size, f.isFile]), [['file.bin', body.length, true]]);
        assert.equal(await client.size('file.bin'), body.length);
        const tail = collect();
        await client.downloadTo(tail.sink, 'file.bin', 1_000_000); // REST 1000000.
        assert.equal(sha256(tail.bytes()), sha256(body.subarray(1_000_000)));
        // An upload resumed the way basic-ftp does it: APPE of what is missing.
        await client.uploadFrom(Readable.from([body.subarray(0, 700_000)]), 'again.bin');
        const have = await client.size('again.bin');
        const rest = new PassThrough();
        rest.end(body.subarray(have));
        await client.appendFrom(rest, 'again.bin');
        assert.equal(sha256File(path.join(t.home, 'a', 'b', 'again.bin')), sha256(body));
        await client.rename('file.bin', 'renamed.bin');
        await client.remove('renamed.bin');
        assert.deepEqual((await client.list()).map((f) => f.name), ['again.bin']);
        await assert.rejects(client.downloadTo(collect().sink, '../../../../secret.txt'), /550/);
        await assert.rejects(client.cd('/escape'), /550/);
      } finally {
        client.close();
      }
    });
  });

  describe('lftp', () => {
    before(() => requireTool('lftp', ['--version'], 'lftp'));

    it('put, get, ls, mirror (MLSD), mv, rm, and reget/reput resume — with lftp\'s defaults (it tries AUTH TLS first)', async () => {
      const source = pattern(4 * 1024 * 1024, 4);
      fs.writeFileSync(path.join(work, 'src.bin'), source);
      fs.writeFileSync(path.join(work, 'part.bin'), source.subarray(0, 1_000_000));
      fs.writeFileSync(path.join(t.home, 'part-up.bin'), source.subarray(0, 1_500_000));
      const script = [
        `open -u ${USER},"${PASSWORD}" -p ${t.port} 127.0.0.1`,
        'set net:max-retries 1', 'set net:timeout 10',
        'mkdir dir', 'cd dir', 'put src.bin', 'ls', 'get src.bin -o got.bin', 'mv src.bin moved.bin', 'cd /',
        'mirror dir mirrored', 'rm dir/moved.bin', 'rmdir dir',
        'reput src.bin -o part-up.bin',
        'quit',
      ].join('; ');
      // reget: the local part.bin grows from what the server sends after REST.
      fs.writeFileSync(path.join(t.home, 'whole.bin'), source);
      const result = await run('lftp', ['-c', script], { cwd: work });
      assert.equal(result.code, 0, `lftp failed:\n${result.stdout}\n${result.stderr}`);
      assert.match(result.stdout, /src\.bin/);
      assert.equal(sha256File(path.join(work, 'got.bin')), sha256(source));
      assert.equal(sha256File(path.join(work, 'mirrored', 'moved.bin')), sha256(source));
      assert.equal(sha256File(path.join(t.home, 'part-up.bin')), sha256(source));
      assert.ok(!fs.existsSync(path.join(t.home, 'dir')));
      const reget = await run('lftp', ['-c', `open -u ${USER},"${PASSWORD}" -p ${t.port} 127.0.0.1; reget whole.bin -o part.bin`], { cwd: work });
      assert.equal(reget.code, 0, reget.stderr);
      assert.equal(sha256File(path.join(work, 'part.bin')), sha256(source));
      assert.ok(t.log.some((l) => new RegExp(`RETR /whole\\.bin completed bytes=${source.length - 1_000_000} `).test(l)), 'reget sent only the rest');
    });
  });
});
