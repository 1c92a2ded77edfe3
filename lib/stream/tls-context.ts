/**
 * TLS settings shared by many connections: our certificate and key, whom we trust, and (for a
 * server) the session cache and ticket keys that let a client resume a session on another
 * connection. One per server, made once: it costs a certificate parse and a key load.
 *
 * It is Node's own OpenSSL underneath (the addon calls the functions the node binary exports:
 * native/tls.cc); `tlsUnavailable()` says why not where it cannot be (builds without OpenSSL's
 * headers, a Node without OpenSSL).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import { binding, TlsContextBinding } from '../native';

type Pem = string | Buffer;

export interface TlsContextOptions {
  /** PEM: the certificate, then any intermediate certificates. Or `certFile`. */
  cert?: Pem;
  certFile?: string;
  /** PEM: the private key. Or `keyFile`. */
  key?: Pem;
  keyFile?: string;
  /**
   * PEM: the authorities a client checks the server's certificate against (default: Node's
   * bundled root certificates, `tls.rootCertificates`). Or `caFile`.
   */
  ca?: Pem | readonly Pem[];
  caFile?: string;
  /** A client checks the server's certificate and name. Default true; false for pinning (TlsConnection's `fingerprint256`). */
  verify?: boolean;
  /** Default 'TLSv1.2'. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** How long (s) a server lets a client resume a session. Default 300 (OpenSSL's); FTPS servers use longer. */
  sessionTimeoutSec?: number;
}

const VERSIONS = { 'TLSv1.2': 0x303, 'TLSv1.3': 0x304 } as const;

/** Why TLS is not available in this process (a sentence), or null when it is. */
export function tlsUnavailable(): string | null {
  return binding.TlsContext === undefined ? binding.tlsUnavailable ?? 'this addon has no TLS' : null;
}

/** `AB:CD:…` (upper-case hex, colon-separated, as Node's `fingerprint256`) of DER bytes. */
export function fingerprint256(der: Uint8Array): string {
  return crypto.createHash('sha256').update(der).digest('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:');
}

/** A fingerprint as people paste it ("ab:cd…", "ABCD…", "sha256:…") in the one form fingerprint256() gives. */
export function normalizeFingerprint(text: string): string {
  const hex = text.trim().replace(/^sha-?256[:=]/i, '').replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) throw new TypeError(`A SHA-256 fingerprint is 64 hex digits (colons allowed); got "${text}"`);
  return hex.replace(/(..)(?!$)/g, '$1:');
}

function pemOf(value: Pem | undefined, file: string | undefined, name: string): Buffer | undefined {
  if (value !== undefined && file !== undefined) throw new TypeError(`Give ${name} or ${name}File, not both`);
  if (file !== undefined) return fs.readFileSync(file);
  return value === undefined ? undefined : Buffer.from(value);
}

export class TlsContext {
  /** @internal The addon's SSL_CTX. */
  readonly native: TlsContextBinding;
  readonly isServer: boolean;
  /** A client checks the server's certificate. */
  readonly verify: boolean;
  /** Our certificate's SHA-256 fingerprint (`AB:CD:…`), what a client pins; null without one. */
  readonly fingerprint256: string | null;

  /** A server's context: `cert` and `key` are required. */
  static server(options: TlsContextOptions): TlsContext {
    return new TlsContext(true, options);
  }

  /** A client's context: by default it verifies the server against Node's root certificates, or `ca`. */
  static client(options: TlsContextOptions = {}): TlsContext {
    return new TlsContext(false, options);
  }

  private constructor(server: boolean, options: TlsContextOptions) {
    const unavailable = tlsUnavailable();
    if (unavailable !== null) throw Object.assign(new Error(`TLS is not available: ${unavailable}`), { code: 'ERR_TLS_UNAVAILABLE' });
    const cert = pemOf(options.cert, options.certFile, 'cert');
    const key = pemOf(options.key, options.keyFile, 'key');
    let ca: Buffer | undefined;
    if (options.caFile !== undefined || options.ca !== undefined) {
      ca = Array.isArray(options.ca) ? Buffer.from(options.ca.join('\n')) : pemOf(options.ca as Pem | undefined, options.caFile, 'ca');
    }
    if (server && (cert === undefined || key === undefined)) throw new TypeError('A TLS server needs a certificate and a key (cert/certFile, key/keyFile)');
    this.isServer = server;
    this.verify = !server && options.verify !== false;
    if (this.verify && ca === undefined) ca = Buffer.from(tls.rootCertificates.join('\n'));
    const minVersion = options.minVersion === undefined ? undefined : VERSIONS[options.minVersion];
    if (options.minVersion !== undefined && minVersion === undefined) throw new RangeError(`minVersion must be 'TLSv1.2' or 'TLSv1.3'; got ${String(options.minVersion)}`);
    this.native = new binding.TlsContext!({
      server, cert, key, ca, verifyPeer: this.verify, minVersion, sessionTimeout: options.sessionTimeoutSec,
    });
    this.fingerprint256 = cert === undefined ? null : new crypto.X509Certificate(cert).fingerprint256;
  }
}
