/**
 * Self-signed certificates for trying TLS out (`iomux ftp cert`, `iomux files cert`), and for the
 * tests and benchmarks. The addon makes them with Node's own OpenSSL, the one its TLS already drives
 * (native/tls_cert.cc: a new EC P-256 or RSA 2048 key, X.509 v3 with subjectAltName, signed with
 * SHA-256): no package to install, no `openssl` binary, and no cryptography written here.
 */
import * as crypto from 'node:crypto';
import { binding, CertificateInit } from '../lib/native';
import { tlsUnavailable } from '../lib/stream/tls-context';

export interface CertificateOptions {
  /** DNS names and numeric addresses the certificate is valid for. Default: localhost, 127.0.0.1, ::1. */
  names?: readonly string[];
  /** Valid from now for this many days. Default 365. */
  days?: number;
  /** The subject's common name. Default: the first name. */
  commonName?: string;
  /** 'ec' (P-256, default) or 'rsa' (2048 bits). */
  key?: 'ec' | 'rsa';
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

const DEFAULT_NAMES = ['localhost', '127.0.0.1', '::1'];

/** The addon's makeCertificate, or an error saying why this process has none. */
function make(init: CertificateInit, command: string): Certificate {
  const why = tlsUnavailable();
  if (why !== null || binding.makeCertificate === undefined) throw new Error(`iomux ${command} needs the addon's TLS: ${why ?? 'this addon has no makeCertificate'}`);
  const { cert, key } = binding.makeCertificate(init);
  return { cert, key, fingerprint256: new crypto.X509Certificate(cert).fingerprint256 };
}

function leafInit(options: CertificateOptions): CertificateInit {
  return { names: options.names ?? DEFAULT_NAMES, days: options.days, commonName: options.commonName, key: options.key };
}

/** A self-signed server certificate and its key. */
export function makeSelfSigned(options: CertificateOptions = {}, command = 'ftp cert'): Certificate {
  return make(leafInit(options), command);
}

/** An authority and a server certificate it signed: what verifying a certificate (`--ca`) is tested with. */
export function makeChain(options: CertificateOptions = {}, command = 'ftp cert'): CertificateChain {
  const ca = make({ ca: true, commonName: 'iomux test authority', days: options.days }, command);
  return { ca, leaf: make({ ...leafInit(options), issuer: ca }, command) };
}
