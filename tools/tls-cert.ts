/**
 * Self-signed certificates for trying TLS out (`iomux ftp cert`, `iomux files cert`), and for the
 * tests and benchmarks. Node has no X.509 writer, so the certificate is built by @peculiar/x509 (an
 * optional package of the tools, like commander), and its key made and its signature computed by
 * Node's own WebCrypto: no cryptography is written here, and no `openssl` binary is needed.
 */
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import { installationOf, installCommand, missingMessage, PACKAGE_ROOT, packageProblem } from './optional';

export interface CertificateOptions {
  /** DNS names and numeric addresses the certificate is valid for. Default: localhost, 127.0.0.1, ::1. */
  names?: readonly string[];
  /** Valid from now for this many days. Default 365. */
  days?: number;
  /** The subject's common name. Default: the first name. */
  commonName?: string;
}

export interface Certificate {
  /** PEM. */
  cert: string;
  /** PEM (PKCS #8). */
  key: string;
  /** SHA-256 fingerprint, `AB:CD:…`: what a client pins (`--fingerprint`). */
  fingerprint256: string;
}

export interface CertificateChain {
  /** The authority a client trusts (`--ca`); its key signs `leaf`. */
  ca: Certificate;
  /** The server's certificate, signed by `ca`. */
  leaf: Certificate;
}

type X509Module = typeof import('@peculiar/x509');

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DEFAULT_NAMES = ['localhost', '127.0.0.1', '::1'];

/** @peculiar/x509, or a one-line error naming the install command. */
function x509Module(command: string): X509Module {
  const problem = packageProblem('@peculiar/x509');
  if (problem !== null) {
    const install = installCommand(installationOf(PACKAGE_ROOT), ['@peculiar/x509'], process.argv.slice(2));
    throw new Error(missingMessage(`iomux ${command}`, [{ name: '@peculiar/x509', problem }], install));
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const x509 = require('@peculiar/x509') as X509Module;
  x509.cryptoProvider.set(crypto.webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  return x509;
}

function serialNumber(): string {
  const bytes = crypto.randomBytes(16);
  bytes[0] &= 0x7f; // A positive integer.
  return bytes.toString('hex');
}

function namesOf(x509: X509Module, names: readonly string[]) {
  for (const name of names) {
    if (net.isIP(name) === 0 && !/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(name)) {
      throw new TypeError(`"${name}" is neither a DNS name nor a numeric address`);
    }
  }
  return new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: net.isIP(value) ? 'ip' as const : 'dns' as const, value })));
}

async function pemKey(key: crypto.webcrypto.CryptoKey): Promise<string> {
  const der = await crypto.webcrypto.subtle.exportKey('pkcs8', key);
  return crypto.createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string;
}

async function finish(cert: { toString(format: 'pem'): string }, key: crypto.webcrypto.CryptoKey): Promise<Certificate> {
  const pem = cert.toString('pem');
  return { cert: pem, key: await pemKey(key), fingerprint256: new crypto.X509Certificate(pem).fingerprint256 };
}

function validity(days: number | undefined): { notBefore: Date; notAfter: Date } {
  const span = days ?? 365;
  if (!Number.isInteger(span) || span < 1 || span > 36500) throw new RangeError(`days must be an integer from 1 to 36500; got ${span}`);
  // A minute back, so a client whose clock is a little behind accepts it at once.
  const notBefore = new Date(Date.now() - 60_000);
  return { notBefore, notAfter: new Date(notBefore.getTime() + span * 86_400_000) };
}

/** A self-signed server certificate (EC P-256, ECDSA with SHA-256) and its key. */
export async function makeSelfSigned(options: CertificateOptions = {}, command = 'ftp cert'): Promise<Certificate> {
  const x509 = x509Module(command);
  const names = options.names ?? DEFAULT_NAMES;
  if (names.length === 0) throw new TypeError('A certificate needs at least one name');
  const keys = await crypto.webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(), name: `CN=${options.commonName ?? names[0]}`, ...validity(options.days), keys, signingAlgorithm: EC,
    extensions: [
      namesOf(x509, names),
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    ],
  });
  return finish(cert, keys.privateKey);
}

/** An authority and a server certificate it signed: what verifying a certificate (`--ca`) is tested with. */
export async function makeChain(options: CertificateOptions = {}, command = 'ftp cert'): Promise<CertificateChain> {
  const x509 = x509Module(command);
  const names = options.names ?? DEFAULT_NAMES;
  const span = validity(options.days);
  const caKeys = await crypto.webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const caName = 'CN=iomux test authority';
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(), name: caName, ...span, keys: caKeys, signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const leafKeys = await crypto.webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(), subject: `CN=${options.commonName ?? names[0]}`, issuer: caName, ...span,
    publicKey: leafKeys.publicKey, signingKey: caKeys.privateKey, signingAlgorithm: EC,
    extensions: [
      namesOf(x509, names),
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    ],
  });
  return { ca: await finish(ca, caKeys.privateKey), leaf: await finish(leaf, leafKeys.privateKey) };
}
