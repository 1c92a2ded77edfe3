/**
 * Certificates made by the addon on Node's own OpenSSL (native/tls_cert.cc, tools/tls-cert.ts,
 * `iomux ftp cert`): every argument checked at the call; what `openssl x509 -text` reads in them
 * (version 3, the key, SHA-256, subjectAltName, validity, the extensions a server certificate and
 * an authority need); `openssl verify` on a chain; and real TLS handshakes by Node's own client that
 * verify them, by name and by address. No optional package is involved.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { binding, CertificateInit } from '../lib/native';
import { TlsContext, tlsUnavailable } from '../lib/stream/tls-context';
import { Certificate, makeChain, makeSelfSigned } from '../tools/tls-cert';
import { requireTool, run } from './run-tool';

const cli = path.resolve(__dirname, '..', 'tools', 'cli.js');
const make = (init: unknown): unknown => binding.makeCertificate!(init as CertificateInit);

/** What `openssl x509 -text` says about a PEM certificate. */
async function x509Text(pem: string, dir: string): Promise<string> {
  const file = path.join(dir, `cert-${Math.random().toString(36).slice(2)}.pem`);
  fs.writeFileSync(file, pem);
  const result = await run('openssl', ['x509', '-in', file, '-noout', '-text']);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout;
}

/** Whether Node's TLS client, trusting `ca`, completes a verified handshake with a server holding `served` for `host` (and SNI `servername`). */
function handshake(served: Certificate, ca: string, host: string, servername?: string): Promise<Error | null> {
  return new Promise((resolve) => {
    const server = tls.createServer({ cert: served.cert, key: served.key }, (socket) => socket.end('ok'));
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      const socket = tls.connect({ host, port, ca, servername });
      const settle = (err: Error | null): void => {
        socket.destroy();
        server.close(() => resolve(err));
      };
      socket.once('secureConnect', () => settle(socket.authorized ? null : new Error(String(socket.authorizationError))));
      socket.once('error', settle);
    });
  });
}

describe('certificates made by the addon (iomux ftp cert / files cert)', function () {
  this.timeout(60000);
  let dir: string;

  before(function () {
    assert.equal(tlsUnavailable(), null);
    requireTool('openssl', ['version'], 'openssl');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-tls-cert-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('makeCertificate checks every argument: TypeError for a wrong type, RangeError for a bad value', () => {
    const typeErrors: [unknown, RegExp][] = [
      [undefined, /options/], [null, /options/], ['localhost', /options/],
      [{ names: 'localhost' }, /options\.names/], [{ names: [7] }, /options\.names\[0\]/], [{ names: ['a', null] }, /options\.names\[1\]/],
      [{ names: ['a'], days: '30' }, /options\.days/], [{ names: ['a'], days: 1.5 }, /options\.days/],
      [{ names: ['a'], key: 7 }, /options\.key/], [{ names: ['a'], ca: 'yes' }, /options\.ca/],
      [{ names: ['a'], commonName: 7 }, /options\.commonName/],
      [{ names: ['a'], issuer: 'ca' }, /options\.issuer/], [{ names: ['a'], issuer: {} }, /options\.issuer needs cert and key/],
      [{ names: ['a'], issuer: { cert: 7, key: 'x' } }, /options\.issuer\.cert/],
    ];
    for (const [options, message] of typeErrors) {
      assert.throws(() => make(options), (err: Error) => err instanceof TypeError && message.test(err.message), `TypeError for ${JSON.stringify(options)}`);
    }
    const rangeErrors: [unknown, RegExp][] = [
      [{}, /at least one name/], [{ names: [] }, /at least one name/],
      [{ names: ['a'], days: 0 }, /options\.days/], [{ names: ['a'], days: 36501 }, /options\.days/], [{ names: ['a'], days: -1 }, /options\.days/],
      [{ names: ['a'], key: 'dsa' }, /'ec' \(P-256\) or 'rsa' \(2048 bits\)/],
      [{ names: Array.from({ length: 101 }, (_, i) => `h${i}.test`) }, /at most 100/],
      [{ names: ['a', 'two words'] }, /options\.names\[1\].*neither a DNS name nor a numeric address/],
      [{ names: ['a,IP:10.0.0.1'] }, /neither a DNS name/], [{ names: ['a:b'] }, /neither/], [{ names: ['-a.test'] }, /neither/],
      [{ names: ['a-.test'] }, /neither/], [{ names: ['a..test'] }, /neither/], [{ names: ['a.test.'] }, /neither/],
      [{ names: ['a.*.test'] }, /neither/], [{ names: ['x'.repeat(64)] }, /neither/], [{ names: [`${'a.'.repeat(127)}a`] }, /neither/],
      [{ names: ['127.0.0.1\0.evil'] }, /neither/], [{ names: ['10.0.0.0/8'] }, /neither/], [{ names: [''] }, /neither/],
      [{ names: ['a'], commonName: '' }, /options\.commonName/], [{ names: ['a'], commonName: 'x'.repeat(65) }, /options\.commonName/],
      [{ names: ['a'], commonName: 'line\nbreak' }, /control character/],
      [{ ca: true }, /options\.commonName/],
    ];
    for (const [options, message] of rangeErrors) {
      assert.throws(() => make(options), (err: Error) => err instanceof RangeError && message.test(err.message), `RangeError for ${JSON.stringify(options).slice(0, 80)}`);
    }
    // An issuer that is not an authority, or whose key is another's, is refused too.
    const leaf = makeSelfSigned();
    const other = makeSelfSigned();
    assert.throws(() => make({ names: ['a'], issuer: { cert: leaf.cert, key: leaf.key } }), /not a certificate authority/);
    assert.throws(() => make({ names: ['a'], issuer: { cert: leaf.cert, key: other.key } }), /does not belong to/);
    assert.throws(() => make({ names: ['a'], issuer: { cert: 'not pem', key: leaf.key } }), /options\.issuer\.cert holds no PEM certificate/);
    assert.throws(() => make({ names: ['a'], issuer: { cert: leaf.cert, key: 'not pem' } }), /options\.issuer\.key holds no PEM private key/);
    // The longest names that are valid are accepted.
    const longest = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    assert.equal(longest.length, 253);
    assert.ok((make({ names: [longest, '*.example.com', 'x'.repeat(63)], commonName: 'é'.repeat(32) }) as { cert: string }).cert.includes('BEGIN CERTIFICATE'));
  });

  it('a self-signed server certificate, as openssl x509 -text reads it: v3, EC P-256 or RSA 2048, SHA-256, subjectAltName, the days asked', async () => {
    for (const key of ['ec', 'rsa'] as const) {
      const made = makeSelfSigned({ names: ['localhost', 'files.example.test', '127.0.0.1', '::1'], days: 10, key });
      assert.match(made.key, /^-----BEGIN PRIVATE KEY-----\n/, 'PKCS #8');
      const text = await x509Text(made.cert, dir);
      assert.match(text, /Version: 3 \(0x2\)/);
      assert.match(text, key === 'ec' ? /Signature Algorithm: ecdsa-with-SHA256/ : /Signature Algorithm: sha256WithRSAEncryption/);
      assert.match(text, key === 'ec' ? /Public-Key: \(256 bit\)[\s\S]*NIST CURVE: P-256/ : /Public-Key: \(2048 bit\)/);
      assert.match(text, /Subject: CN = localhost/);
      assert.match(text, /Issuer: CN = localhost/);
      assert.match(text, /DNS:localhost, DNS:files\.example\.test, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
      assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
      assert.match(text, key === 'ec' ? /Key Usage: critical\s+Digital Signature\n/ : /Key Usage: critical\s+Digital Signature, Key Encipherment/);
      assert.match(text, /Extended Key Usage:\s+TLS Web Server Authentication/);
      assert.match(text, /Subject Key Identifier/);
      const notBefore = Date.parse(/Not Before: (.+)/.exec(text)![1]);
      const notAfter = Date.parse(/Not After : (.+)/.exec(text)![1]);
      assert.equal(notAfter - notBefore, 10 * 86_400_000);
      assert.ok(notBefore <= Date.now() && notBefore > Date.now() - 10 * 60_000, 'valid from about now');
      const serial = /Serial Number:\s*(?:([0-9]+)|\n\s*([0-9a-f:]+))/.exec(text);
      assert.ok(serial !== null, 'a serial number');
      assert.notEqual(made.fingerprint256, makeSelfSigned({ key }).fingerprint256, 'a new key each time');
    }
    // The longest allowed: days * 86400 seconds would overflow a 32-bit long (Windows) above ~24,800 days.
    const century = new crypto.X509Certificate(makeSelfSigned({ days: 36_500 }).cert);
    assert.equal(Date.parse(century.validTo) - Date.parse(century.validFrom), 36_500 * 86_400_000);
  });

  it('an authority and a certificate it signed: CA:TRUE with keyCertSign; openssl verify accepts the chain', async () => {
    const { ca, leaf } = makeChain({ names: ['localhost'] });
    const caText = await x509Text(ca.cert, dir);
    assert.match(caText, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    assert.match(caText, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
    assert.match(caText, /Subject: CN = iomux test authority/);
    const leafText = await x509Text(leaf.cert, dir);
    assert.match(leafText, /Issuer: CN = iomux test authority/);
    assert.match(leafText, /Authority Key Identifier/);
    fs.writeFileSync(path.join(dir, 'ca.pem'), ca.cert);
    fs.writeFileSync(path.join(dir, 'leaf.pem'), leaf.cert);
    const verified = await run('openssl', ['verify', '-CAfile', path.join(dir, 'ca.pem'), path.join(dir, 'leaf.pem')]);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, /leaf\.pem: OK/);
  });

  it("Node's TLS client verifies them in a real handshake: by name and by address, EC and RSA, self-signed and by an authority; a name not in it is refused", async () => {
    for (const key of ['ec', 'rsa'] as const) {
      const self = makeSelfSigned({ key });
      assert.equal(await handshake(self, self.cert, '127.0.0.1'), null, `${key}: by address 127.0.0.1`);
      assert.equal(await handshake(self, self.cert, '::1'), null, `${key}: by address ::1`);
      assert.equal(await handshake(self, self.cert, '127.0.0.1', 'localhost'), null, `${key}: by name`);
      const { ca, leaf } = makeChain({ key });
      assert.equal(await handshake(leaf, ca.cert, '127.0.0.1', 'localhost'), null, `${key}: signed by the authority`);
    }
    const other = makeSelfSigned({ names: ['example.com'] });
    const refused = await handshake(other, other.cert, '127.0.0.1', 'localhost');
    assert.equal((refused as NodeJS.ErrnoException | null)?.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    const wildcard = makeSelfSigned({ names: ['*.example.test'] });
    assert.equal(await handshake(wildcard, wildcard.cert, '127.0.0.1', 'files.example.test'), null, 'a wildcard name');
  });

  it('a passphrase-protected key is refused with its own code, never asked for on the terminal (TlsContext, an issuer\'s key)', () => {
    const { ca } = makeChain();
    const encrypted = (pem: string): string => crypto.createPrivateKey(pem)
      .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }) as string;
    const refused = (err: Error): boolean => (err as NodeJS.ErrnoException).code === 'ERR_IOMUX_TLS_KEY_ENCRYPTED' && /passphrase-protected/.test(err.message);
    const leaf = makeSelfSigned();
    assert.throws(() => TlsContext.server({ cert: leaf.cert, key: encrypted(leaf.key) }), refused);
    assert.throws(() => make({ names: ['a'], issuer: { cert: ca.cert, key: encrypted(ca.key) } }), refused);
  });

  it('a TlsContext or TlsEngine refused half-way (after OpenSSL made its object) throws and holds nothing (test:asan checks the latter)', () => {
    const leaf = makeSelfSigned();
    const other = makeSelfSigned();
    const context = (init: object): unknown => new binding.TlsContext!(init as never);
    assert.throws(() => context({ server: true, cert: leaf.cert, key: other.key }), /options\.key could not be used: .*key values mismatch/);
    assert.throws(() => context({ server: true, cert: 'no certificate here', key: leaf.key }), /options\.cert holds no PEM certificate/);
    assert.throws(() => context({ server: false, ca: 'no certificate here' }), /options\.ca holds no PEM certificate/);
    const client = new binding.TlsContext!({ server: false, verifyPeer: false });
    const engine = (options: object): unknown => new binding.TlsEngine!(client, options as never);
    assert.throws(() => engine({ sessionIdContext: Buffer.alloc(33) }), RangeError);
    assert.throws(() => engine({ tickets: 17 }), RangeError);
    assert.throws(() => engine({ ip: 'not an address' }), TypeError);
    // A NUL would end the name OpenSSL checks early (c_str()): a shorter name, accepted silently.
    assert.throws(() => engine({ servername: 'example.com\0.evil.test' }), /^TypeError: options\.servername must not contain a NUL character$/);
    assert.throws(() => engine({ host: 'example.com\0.evil.test' }), /^TypeError: options\.host must not contain a NUL character$/);
    assert.throws(() => engine({ ip: '127.0.0.1\0junk' }), /^TypeError: options\.ip must not contain a NUL character$/);
    assert.throws(() => engine({ session: Buffer.from('not a session') }), /options\.session is not a DER-encoded TLS session/);
  });

  it('iomux ftp cert works after a plain install (no optional package): --name, --days, --key-type; bad input is one line', async () => {
    const manifest = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
    for (const section of ['dependencies', 'peerDependencies', 'devDependencies', 'optionalDependencies']) {
      assert.equal(manifest[section]?.['@peculiar/x509'], undefined, `@peculiar/x509 in ${section}`);
    }
    const out = path.join(dir, 'cli');
    const made = await run(process.execPath, [cli, 'ftp', 'cert', '--out', out, '--name', 'ftp.example.test', '--name', '10.1.2.3', '--days', '7', '--key-type', 'rsa']);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /SHA-256 fingerprint [0-9A-F:]{95}/);
    assert.equal(fs.statSync(path.join(out, 'key.pem')).mode & 0o777, 0o600);
    const text = await x509Text(fs.readFileSync(path.join(out, 'cert.pem'), 'utf8'), dir);
    assert.match(text, /DNS:ftp\.example\.test, IP Address:10\.1\.2\.3/);
    assert.match(text, /Public-Key: \(2048 bit\)/);
    const again = await run(process.execPath, [cli, 'ftp', 'cert', '--out', out]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /exists \(--force overwrites it\)/);
    const bad = await run(process.execPath, [cli, 'files', 'cert', '--out', path.join(dir, 'bad'), '--name', 'two words']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /options\.names\[0\] \("two words"\) is neither a DNS name nor a numeric address/);
    assert.equal(fs.existsSync(path.join(dir, 'bad', 'key.pem')), false, 'nothing written');
    const badType = await run(process.execPath, [cli, 'files', 'cert', '--out', path.join(dir, 'bad'), '--key-type', 'dsa']);
    assert.notEqual(badType.code, 0);
    assert.match(badType.stderr, /--key-type/);
  });
});
