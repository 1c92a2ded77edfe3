/**
 * `iomux files` over TLS: the server (TLS from every connection's first byte) and the client,
 * verifying the server's certificate against a CA or pinning its fingerprint, on epoll and io_uring;
 * a resumed upload over TLS; refusals that name why; and the CLI (`serve --tls-cert/--tls-key`,
 * `put --ca`, `get --fingerprint`) as a user runs it.
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getFile, putFile } from '../lib/files/client';
import { Reactor } from '../lib/reactor';
import { availableMechanisms, createSelector, MechanismName } from '../lib/selectors/default';
import { TlsContext } from '../lib/stream/tls-context';
import { failure, partials, removeTempDirs, sha256, startServer, tempDir, writePattern } from './files-fixtures';
import { leakedSince, openKernelObjects, startChild } from './helpers';
import { TlsFixtures, tlsFixtures } from './tls-fixtures';

const MiB = 1024 * 1024;
const cli = path.resolve(__dirname, '..', 'tools', 'cli.js');

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0, stdout, stderr });
    });
  });
}

describe('files over TLS', function () {
  this.timeout(60000);
  let fx: TlsFixtures;
  let serverContext: TlsContext;
  after(removeTempDirs);

  before(async () => {
    fx = await tlsFixtures();
    serverContext = TlsContext.server({ certFile: fx.chain.certFile, keyFile: fx.chain.keyFile });
  });

  for (const mechanism of (['epoll', 'io_uring'] as MechanismName[]).filter((m) => availableMechanisms().includes(m))) {
    it(`${mechanism}: put (verified against the CA) then get (pinned by fingerprint), 5 MiB byte-exact; a wrong pin and an unknown CA are refused`, async () => {
      const before = openKernelObjects();
      const reactor = new Reactor(createSelector(mechanism)).attach();
      const dir = tempDir('srv');
      const local = tempDir('cli');
      const served = startServer(reactor, dir, { tls: serverContext });
      try {
        const endpoint = { port: served.port };
        const data = writePattern(path.join(local, 'a.bin'), 5 * MiB + 3, 2);
        const put = await putFile({ reactor, endpoint, file: path.join(local, 'a.bin'), tls: { context: TlsContext.client({ caFile: fx.chain.caFile }) } });
        assert.equal(put.sha256, sha256(data).toString('hex'));
        assert.ok(fs.readFileSync(path.join(dir, 'a.bin')).equals(data));
        const pinned = { context: TlsContext.client({ verify: false }), fingerprint256: fx.chain.leaf.fingerprint256 };
        const got = await getFile({ reactor, endpoint, name: 'a.bin', output: path.join(local, 'b.bin'), tls: pinned });
        assert.equal(got.sha256, put.sha256);
        assert.ok(fs.readFileSync(path.join(local, 'b.bin')).equals(data));
        const wrongPin = await failure(getFile({ reactor, endpoint, name: 'a.bin', output: path.join(local, 'c.bin'),
          tls: { context: TlsContext.client({ verify: false }), fingerprint256: fx.self.fingerprint256 } }));
        assert.equal(wrongPin.reason, 'failed');
        assert.match(wrongPin.message, /fingerprint/);
        const unknownCa = await failure(getFile({ reactor, endpoint, name: 'a.bin', output: path.join(local, 'd.bin'),
          tls: { context: TlsContext.client() } }));
        assert.equal(unknownCa.reason, 'failed');
        assert.match(unknownCa.message, /certificate verify failed/);
        assert.ok(!fs.existsSync(path.join(local, 'c.bin')) && !fs.existsSync(path.join(local, 'd.bin')));
        assert.deepEqual([served.server.stats.stored, served.server.stats.sent], [1, 1]);
      } finally {
        await served.close();
        reactor.close();
      }
      assert.deepEqual(leakedSince(before), []);
    });
  }

  it('an upload cut off mid-way resumes over TLS from the server\'s partial, to the same SHA-256', async () => {
    const reactor = new Reactor().attach();
    const dir = tempDir('srv');
    const local = tempDir('cli');
    const served = startServer(reactor, dir, { tls: serverContext });
    const tls = { context: TlsContext.client({ caFile: fx.chain.caFile }) };
    try {
      const endpoint = { port: served.port };
      const data = writePattern(path.join(local, 'big.bin'), 24 * MiB, 3);
      // Slow enough to be cut: 8 MiB/s, then the server closes every connection after about 1 s.
      const first = failure(putFile({ reactor, endpoint, file: path.join(local, 'big.bin'), tls, limitRate: 8 * MiB }));
      const held = await new Promise<number>((resolve) => {
        const poll = reactor.setInterval(() => {
          const partial = partials(dir)[0];
          if (partial !== undefined && partial.size >= 4 * MiB) {
            reactor.clearTimer(poll);
            resolve(partial.size);
          }
        }, 20);
      });
      await served.close();
      await first;
      const again = startServer(reactor, dir, { tls: serverContext, endpoint: { host: '127.0.0.1', port: served.port } });
      try {
        const resumed = await putFile({ reactor, endpoint, file: path.join(local, 'big.bin'), tls });
        assert.ok(resumed.offset >= held / 2 && resumed.offset > 0, `resumed at ${resumed.offset}, held ${held}`);
        assert.equal(resumed.sha256, sha256(data).toString('hex'));
        assert.ok(fs.readFileSync(path.join(dir, 'big.bin')).equals(data));
      } finally {
        await again.close();
      }
    } finally {
      reactor.close();
    }
  });

  it('the CLI: files cert, serve --tls-cert/--tls-key, put --ca, get --fingerprint; a plaintext client is turned away', async () => {
    const work = tempDir('cli-tls');
    const certDir = path.join(work, 'tls');
    const made = await runCli(['files', 'cert', '--out', certDir]);
    assert.equal(made.code, 0, made.stderr);
    const fingerprint = /SHA-256 fingerprint ([0-9A-F:]{95})/.exec(made.stdout)![1];
    assert.equal((fs.statSync(path.join(certDir, 'key.pem')).mode & 0o777), 0o600);
    const served = path.join(work, 'served');
    fs.mkdirSync(served);
    const server = await startChild(process.execPath, [cli, 'files', 'serve', '--quiet', '--dir', served, '--port', '0',
      '--tls-cert', path.join(certDir, 'cert.pem'), '--tls-key', path.join(certDir, 'key.pem')], /listening on [^:]+:(\d+)/);
    try {
      const at = `127.0.0.1:${server.match[1]}`;
      const data = writePattern(path.join(work, 'up.bin'), 2 * MiB, 4);
      let r = await runCli(['files', 'put', path.join(work, 'up.bin'), '--to', at, '--ca', path.join(certDir, 'cert.pem'), '--no-progress']);
      assert.equal(r.code, 0, r.stderr);
      r = await runCli(['files', 'get', 'up.bin', '--from', at, '--fingerprint', fingerprint.toLowerCase(), '-o', path.join(work, 'down.bin'), '--no-progress']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(fs.readFileSync(path.join(work, 'down.bin')).equals(data));
      r = await runCli(['files', 'get', 'up.bin', '--from', at, '--tls', '-o', path.join(work, 'x.bin'), '--no-progress']);
      assert.equal(r.code, 1, r.stderr); // A self-signed certificate is not trusted by Node's roots.
      assert.match(r.stderr, /self-signed certificate/);
      r = await runCli(['files', 'get', 'up.bin', '--from', at, '-o', path.join(work, 'y.bin'), '--no-progress']);
      assert.equal(r.code, 4, r.stderr); // In clear: the server's TLS refuses it and closes.
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });
});
