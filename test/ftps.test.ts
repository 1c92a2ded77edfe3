/**
 * FTPS (RFC 4217) with real clients — curl, lftp, Python's ftplib.FTP_TLS and basic-ftp — each
 * verifying the server's certificate, on epoll and on io_uring; then the policy, as an attacker
 * would test it: --require-tls refuses every clear login and every clear data connection, a data
 * connection that does not resume the control connection's TLS session is refused, plaintext
 * pipelined after AUTH TLS is never run, and a client that stops mid-handshake is cut off holding
 * nothing.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { Client as BasicFtp } from 'basic-ftp';
import { availableMechanisms, MechanismName } from '../lib/selectors/default';
import { TlsContext } from '../lib/stream/tls-context';
import { FtpTlsOptions } from '../lib/ftp/tls';
import { makeUsersFile, pattern, PASSWORD, sha256File, startServer, TestServer, USER } from './ftp-fixtures';
import { requireTool, run } from './run-tool';
import { leakedSince, openKernelObjects, startChild } from './helpers';
import { TlsFixtures, tlsFixtures } from './tls-fixtures';

const ftplibTls = path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'ftplib-tls-client.py');

/** Descriptors opened since `before`, after giving Node's loop a few turns to close the clients' own sockets (a TLS socket's close is asynchronous). */
async function leakedAfterSettling(before: Map<number, string>): Promise<string[]> {
  for (let turn = 0; turn < 100 && leakedSince(before).length > 0; turn++) await new Promise((resolve) => setImmediate(resolve));
  return leakedSince(before);
}


interface Reply {
  code: number;
  text: string;
}

/** A line-level FTP client that can switch its control connection to TLS (AUTH TLS) mid-stream. */
class RawFtps {
  private socket: net.Socket;
  private buffered = '';
  private readonly replies: Reply[] = [];
  private waiter: ((reply: Reply) => void) | null = null;
  closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.closed = this.listen(socket);
  }

  static async connect(port: number, options: { implicitCa?: string } = {}): Promise<RawFtps> {
    const socket = options.implicitCa !== undefined
      ? tls.connect({ port, host: '127.0.0.1', ca: options.implicitCa })
      : net.connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => {
      socket.once(options.implicitCa !== undefined ? 'secureConnect' : 'connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawFtps(socket);
    assert.equal((await client.reply()).code, 220);
    return client;
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  async command(line: string): Promise<Reply> {
    this.send(`${line}\r\n`);
    return this.reply();
  }

  reply(): Promise<Reply> {
    const ready = this.replies.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** The TLS handshake on the control connection (after a 234), verifying the server with `ca`. */
  async startTls(ca: string): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = tls.connect({ socket: plain, ca, host: '127.0.0.1' });
    await new Promise((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.closed = this.listen(secure);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private listen(socket: net.Socket): Promise<void> {
    socket.on('data', (chunk: Buffer) => {
      this.buffered += chunk.toString('utf8');
      for (let end = this.buffered.indexOf('\r\n'); end >= 0; end = this.buffered.indexOf('\r\n')) {
        const line = this.buffered.slice(0, end);
        this.buffered = this.buffered.slice(end + 2);
        if (!/^\d{3} /.test(line)) continue; // Only single-line replies and the last line of multi-line ones.
        const reply = { code: Number(line.slice(0, 3)), text: line.slice(4) };
        const waiter = this.waiter;
        this.waiter = null;
        if (waiter) waiter(reply);
        else this.replies.push(reply);
      }
    });
    socket.on('error', () => undefined);
    return new Promise((resolve) => socket.once('close', () => resolve()));
  }
}

describe('FTPS (RFC 4217)', function () {
  this.timeout(90000);
  let fx: TlsFixtures;
  let context: TlsContext;

  before(async () => {
    fx = await tlsFixtures();
    // A CA-signed certificate: every client below verifies it (and the name 127.0.0.1) with ca.pem.
    context = TlsContext.server({ certFile: fx.chain.certFile, keyFile: fx.chain.keyFile });
  });

  function tlsOptions(extra: Partial<FtpTlsOptions> = {}): FtpTlsOptions {
    return { context, ...extra };
  }

  const mechanisms = (['epoll', 'io_uring'] as MechanismName[]).filter((m) => availableMechanisms().includes(m));

  for (const mechanism of mechanisms) {
    describe(`real clients on ${mechanism}`, () => {
      let t: TestServer;
      let work: string;
      let before: Map<number, string>;

      beforeEach(async () => {
        before = openKernelObjects();
        t = await startServer({ mechanism, dataTimeoutMs: 10000, tls: tlsOptions({ require: true }) });
        work = path.join(t.base, 'client');
        fs.mkdirSync(work);
      });

      afterEach(async () => {
        await t.stop();
        assert.deepEqual(await leakedAfterSettling(before), []);
      });

      it('curl --ssl-reqd --cacert: upload, download, a resumed upload and a resumed download, byte-exact; the list', async () => {
        requireTool('curl', ['--version'], 'curl');
        const source = path.join(work, 'source.bin');
        fs.writeFileSync(source, pattern(6 * 1024 * 1024, 3));
        const url = `ftp://127.0.0.1:${t.port}/`;
        const common = ['-sS', '--ssl-reqd', '--cacert', fx.chain.caFile, '-u', `${USER}:${PASSWORD}`];
        let r = await run('curl', [...common, '-T', source, `${url}up.bin`]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(sha256File(path.join(t.home, 'up.bin')), sha256File(source));
        r = await run('curl', [...common, `${url}up.bin`, '-o', path.join(work, 'down.bin')]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(sha256File(path.join(work, 'down.bin')), sha256File(source));
        // A resumed upload: the server has the first 2 MiB; curl -C - asks SIZE and appends the rest.
        fs.writeFileSync(path.join(t.home, 'partial.bin'), fs.readFileSync(source).subarray(0, 2 * 1024 * 1024));
        r = await run('curl', [...common, '-C', '-', '-T', source, `${url}partial.bin`]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(sha256File(path.join(t.home, 'partial.bin')), sha256File(source));
        // A resumed download: the client has the first 1 MiB; REST then RETR.
        const local = path.join(work, 'resumed.bin');
        fs.writeFileSync(local, fs.readFileSync(source).subarray(0, 1024 * 1024));
        r = await run('curl', [...common, '-C', '-', `${url}up.bin`, '-o', local]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(sha256File(local), sha256File(source));
        r = await run('curl', [...common, '--list-only', url]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.stdout.trim().split(/\r?\n/).sort(), ['partial.bin', 'up.bin']);
      });

      it('lftp with ftp:ssl-force, ftp:ssl-protect-data and its CA file: put, get, ls', async () => {
        requireTool('lftp', ['--version'], 'lftp');
        const source = path.join(work, 'source.bin');
        fs.writeFileSync(source, pattern(3 * 1024 * 1024, 4));
        const script = [
          'set ftp:ssl-force true', 'set ftp:ssl-protect-data true', `set ssl:ca-file ${fx.chain.caFile}`,
          'set ssl:verify-certificate true', 'set net:max-retries 1', 'set cmd:fail-exit true',
          `put ${source} -o lftp.bin`, `get lftp.bin -o ${path.join(work, 'back.bin')}`, 'cls -1', 'bye',
        ].join('; ');
        const r = await run('lftp', ['-u', `${USER},${PASSWORD}`, '-p', String(t.port), '-e', script, '127.0.0.1'], { timeoutMs: 60000 });
        assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
        assert.equal(sha256File(path.join(t.home, 'lftp.bin')), sha256File(source));
        assert.equal(sha256File(path.join(work, 'back.bin')), sha256File(source));
        assert.equal(r.stdout.trim(), 'lftp.bin');
      });

      it('Python ftplib.FTP_TLS with prot_p(): a whole session on data connections that resume the control connection\'s session', async () => {
        requireTool('python3', ['-c', 'import ftplib, ssl'], 'python3');
        fs.writeFileSync(path.join(work, 'source.bin'), pattern(4 * 1024 * 1024, 5));
        const r = await run('python3', [ftplibTls, String(t.port), USER, PASSWORD, fx.chain.caFile, 'session', work]);
        assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
        assert.deepEqual(r.stdout.trim().split('\n'), ['ok login-prot-p', 'ok upload-download', 'ok resumed-download', 'ok size-nlst-delete']);
      });

      it('basic-ftp with secure: true: upload and download byte-exact, the list', async () => {
        const source = path.join(work, 'source.bin');
        fs.writeFileSync(source, pattern(3 * 1024 * 1024, 6));
        const client = new BasicFtp(30000);
        try {
          await client.access({ host: '127.0.0.1', port: t.port, user: USER, password: PASSWORD, secure: true,
            secureOptions: { ca: fx.chain.ca.cert } });
          await client.uploadFrom(source, 'basic.bin');
          await client.downloadTo(path.join(work, 'basic-back.bin'), 'basic.bin');
          assert.deepEqual((await client.list()).map((entry) => entry.name), ['basic.bin']);
        } finally {
          client.close();
        }
        // The last listing's data connection lingers until basic-ftp's side closes; it belongs to no
        // session any more, so wait for it rather than stop the reactor under it.
        while (t.reactor.selector.keys.size > 1) await new Promise((resolve) => setTimeout(resolve, 10));
        assert.equal(sha256File(path.join(t.home, 'basic.bin')), sha256File(source));
        assert.equal(sha256File(path.join(work, 'basic-back.bin')), sha256File(source));
      });
    });
  }

  it('a server whose reactor blocks its thread in run() serves FTPS the same (curl up and down)', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-ftps-run-'));
    try {
      const root = path.join(base, 'root');
      fs.mkdirSync(path.join(root, USER), { recursive: true });
      const users = makeUsersFile(base);
      const script = `
        const { FtpServer, TlsContext, Reactor } = require(${JSON.stringify(path.resolve(__dirname, '..', 'lib'))});
        const reactor = new Reactor();
        const context = TlsContext.server({ certFile: ${JSON.stringify(fx.chain.certFile)}, keyFile: ${JSON.stringify(fx.chain.keyFile)} });
        const server = new FtpServer({ reactor, root: ${JSON.stringify(root)}, users: ${JSON.stringify(users)}, port: 0, tls: { context, require: true } });
        console.log('listening on 127.0.0.1:' + server.listen().port);
        process.stdin.on('data', () => undefined); // run() blocks: nothing here runs until it returns.
        reactor.run();
      `;
      const started = await startChild(process.execPath, ['-e', script], /listening on [^:]+:(\d+)/);
      try {
        const port = started.match[1];
        const source = path.join(base, 'source.bin');
        fs.writeFileSync(source, pattern(2 * 1024 * 1024, 9));
        const common = ['-sS', '--ssl-reqd', '--cacert', fx.chain.caFile, '-u', `${USER}:${PASSWORD}`];
        let r = await run('curl', [...common, '-T', source, `ftp://127.0.0.1:${port}/run.bin`]);
        assert.equal(r.code, 0, r.stderr);
        r = await run('curl', [...common, `ftp://127.0.0.1:${port}/run.bin`, '-o', path.join(base, 'back.bin')]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(sha256File(path.join(base, 'back.bin')), sha256File(source));
      } finally {
        started.child.kill();
        await started.exited;
      }
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });

  describe('the policy', () => {
    let t: TestServer;
    let before: Map<number, string>;

    beforeEach(() => {
      before = openKernelObjects();
    });

    afterEach(async () => {
      await t.stop();
      assert.deepEqual(await leakedAfterSettling(before), []);
    });

    it('--require-tls: USER and PASS in clear are refused (530), and curl without TLS is refused its login', async () => {
      t = await startServer({ tls: tlsOptions({ require: true }) });
      const client = await RawFtps.connect(t.port);
      assert.equal((await client.command(`USER ${USER}`)).code, 530);
      assert.equal((await client.command(`PASS ${PASSWORD}`)).code, 530);
      const feat = await client.command('FEAT');
      assert.equal(feat.code, 211);
      client.destroy();
      await client.closed;
      const r = await run('curl', ['-sS', '-u', `${USER}:${PASSWORD}`, `ftp://127.0.0.1:${t.port}/`]);
      assert.equal(r.code, 67, r.stderr); // CURLE_LOGIN_DENIED
      assert.equal(t.server.stats.logins, 0);
    });

    it('--require-tls: PROT C is refused (534), and a transfer without PROT P is refused (521) before any data connection is used', async () => {
      t = await startServer({ tls: tlsOptions({ require: true }) });
      fs.writeFileSync(path.join(t.home, 'file.txt'), 'secret contents');
      const client = await RawFtps.connect(t.port);
      assert.equal((await client.command('PBSZ 0')).code, 503, 'PBSZ needs AUTH first');
      assert.equal((await client.command('AUTH TLS')).code, 234);
      await client.startTls(fx.chain.ca.cert);
      assert.equal((await client.command(`USER ${USER}`)).code, 331);
      assert.equal((await client.command(`PASS ${PASSWORD}`)).code, 230);
      assert.equal((await client.command('AUTH TLS')).code, 503, 'a second AUTH');
      assert.equal((await client.command('PROT P')).code, 503, 'PROT needs PBSZ first');
      assert.equal((await client.command('PBSZ 0')).code, 200);
      assert.equal((await client.command('PROT C')).code, 534);
      assert.equal((await client.command('PROT S')).code, 536);
      assert.equal((await client.command('CCC')).code, 534);
      assert.equal((await client.command('EPSV')).code, 229);
      assert.equal((await client.command('RETR file.txt')).code, 521);
      // curl asks for TLS on the control connection only (--ftp-ssl-control): its transfer is refused.
      const r = await run('curl', ['-sS', '--ftp-ssl-control', '--cacert', fx.chain.caFile, '-u', `${USER}:${PASSWORD}`,
        `ftp://127.0.0.1:${t.port}/file.txt`]);
      assert.equal(r.code, 19, r.stderr); // CURLE_FTP_COULDNT_RETR_FILE: the 521
      assert.match(r.stderr, /521/);
      client.destroy();
      await client.closed;
    });

    it('a data connection that does not resume the control connection\'s session is refused (522): curl --no-sessionid, Python\'s plain FTP_TLS', async () => {
      t = await startServer({ tls: tlsOptions() });
      fs.writeFileSync(path.join(t.home, 'source.bin'), pattern(100_000, 7));
      const r = await run('curl', ['-sS', '--ssl-reqd', '--no-sessionid', '--cacert', fx.chain.caFile, '-u', `${USER}:${PASSWORD}`,
        `ftp://127.0.0.1:${t.port}/source.bin`, '-o', '/dev/null']);
      assert.notEqual(r.code, 0, 'curl without session reuse got the file');
      const py = await run('python3', [ftplibTls, String(t.port), USER, PASSWORD, fx.chain.caFile, 'no-reuse', t.base]);
      assert.equal(py.code, 0, py.stderr);
      assert.match(py.stdout, /^refused 522 /m);
      const refusals = t.log.filter((line) => line.includes('no session reuse'));
      assert.equal(refusals.length, 2, t.log.join('\n'));
      assert.equal(t.server.stats.bytesOut, 0);
    });

    it('--no-tls-session-reuse lets Python\'s plain FTP_TLS transfer (requireSessionReuse: false)', async () => {
      t = await startServer({ tls: tlsOptions({ requireSessionReuse: false }) });
      fs.writeFileSync(path.join(t.home, 'source.bin'), pattern(100_000, 7));
      const py = await run('python3', [ftplibTls, String(t.port), USER, PASSWORD, fx.chain.caFile, 'no-reuse', t.base]);
      assert.equal(py.code, 0, py.stderr);
      assert.match(py.stdout, /^transfer accepted$/m);
    });

    it('plaintext pipelined after AUTH TLS is never run: USER sent in clear with AUTH is dropped', async () => {
      t = await startServer({ tls: tlsOptions() });
      const client = await RawFtps.connect(t.port);
      // One write: AUTH, then commands an attacker in the path appended in clear.
      client.send(`AUTH TLS\r\nUSER ${USER}\r\nPASS ${PASSWORD}\r\nDELE x`);
      assert.equal((await client.reply()).code, 234);
      await client.startTls(fx.chain.ca.cert);
      // Had USER run, PASS would log in; it gets "send USER first" instead.
      assert.equal((await client.command(`PASS ${PASSWORD}`)).code, 503);
      assert.equal((await client.command('NOOP')).code, 200);
      // USER and PASS were complete lines; the partial DELE was dropped with the old framing.
      assert.ok(t.log.some((line) => /2 command\(s\) sent in clear after AUTH TLS dropped/.test(line)), t.log.join('\n'));
      assert.equal(t.server.stats.logins, 0);
      client.destroy();
      await client.closed;
    });

    it('a client that stops in the middle of the control handshake is cut off and holds nothing', async () => {
      t = await startServer({ tls: tlsOptions(), dataTimeoutMs: 400 });
      const client = await RawFtps.connect(t.port);
      assert.equal((await client.command('AUTH TLS')).code, 234);
      // Half a ClientHello's header, then silence.
      (client as unknown as { socket: net.Socket }).socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02]));
      await client.closed;
      assert.ok(t.log.some((line) => line.includes('disconnected')), t.log.join('\n'));
      assert.equal(t.server.stats.connections, 0);
    });

    it('a data connection that stops in the middle of its handshake fails its transfer (425) and is closed', async () => {
      t = await startServer({ tls: tlsOptions(), dataTimeoutMs: 400 });
      fs.writeFileSync(path.join(t.home, 'file.txt'), 'x');
      const client = await RawFtps.connect(t.port);
      assert.equal((await client.command('AUTH TLS')).code, 234);
      await client.startTls(fx.chain.ca.cert);
      assert.equal((await client.command(`USER ${USER}`)).code, 331);
      assert.equal((await client.command(`PASS ${PASSWORD}`)).code, 230);
      assert.equal((await client.command('PBSZ 0')).code, 200);
      assert.equal((await client.command('PROT P')).code, 200);
      const epsv = await client.command('EPSV');
      const port = Number(/\(\|\|\|(\d+)\|\)/.exec(epsv.text)![1]);
      const data = net.connect(port, '127.0.0.1');
      await new Promise((resolve) => data.once('connect', resolve));
      data.write(Buffer.from([0x16, 0x03, 0x01])); // and nothing more
      data.on('error', () => undefined);
      const dataClosed = new Promise((resolve) => data.once('close', resolve));
      assert.equal((await client.command('RETR file.txt')).code, 150);
      const final = await client.reply();
      assert.equal(final.code, 425, final.text);
      // The handshake's limit and the data channel's own (both --data-timeout) race: either says 425.
      assert.match(final.text, /TLS handshake failed|none came within/);
      data.end();
      await dataClosed;
      assert.equal((await client.command('NOOP')).code, 200);
      client.destroy();
      await client.closed;
    });

    it('implicit FTPS (TLS from the first byte): curl ftps:// up and down', async () => {
      t = await startServer({ tls: tlsOptions({ implicit: true }) });
      const source = path.join(t.base, 'source.bin');
      fs.writeFileSync(source, pattern(1024 * 1024, 8));
      const common = ['-sS', '--cacert', fx.chain.caFile, '-u', `${USER}:${PASSWORD}`];
      let r = await run('curl', [...common, '-T', source, `ftps://127.0.0.1:${t.port}/implicit.bin`]);
      assert.equal(r.code, 0, r.stderr);
      r = await run('curl', [...common, `ftps://127.0.0.1:${t.port}/implicit.bin`, '-o', path.join(t.base, 'back.bin')]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(sha256File(path.join(t.base, 'back.bin')), sha256File(source));
      const raw = await RawFtps.connect(t.port, { implicitCa: fx.chain.ca.cert });
      assert.equal((await raw.command('AUTH TLS')).code, 503, 'already TLS');
      raw.destroy();
      await raw.closed;
    });

    it('FEAT lists AUTH TLS, PBSZ and PROT with a certificate; without one AUTH, PBSZ, PROT and CCC are 502', async () => {
      t = await startServer({ tls: tlsOptions() });
      const client = await RawFtps.connect(t.port);
      client.send('FEAT\r\n');
      const lines: string[] = [];
      const sock = (client as unknown as { socket: net.Socket }).socket;
      await new Promise<void>((resolve) => {
        let text = '';
        sock.prependListener('data', (chunk: Buffer) => {
          text += chunk.toString();
          if (/\r\n211 /.test(text)) {
            lines.push(...text.split('\r\n'));
            resolve();
          }
        });
      });
      for (const feature of [' AUTH TLS', ' PBSZ', ' PROT']) assert.ok(lines.includes(feature), lines.join('|'));
      client.destroy();
      await client.closed;
      await t.stop();
      t = await startServer();
      const plain = await RawFtps.connect(t.port);
      for (const command of ['AUTH TLS', 'PBSZ 0', 'PROT P', 'CCC']) assert.equal((await plain.command(command)).code, 502, command);
      plain.destroy();
      await plain.closed;
    });
  });
});
