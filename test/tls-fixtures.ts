/**
 * Certificates for the TLS suites, made once per test run by tools/tls-cert.ts (the addon's
 * makeCertificate, on Node's own OpenSSL), in a directory removed at exit.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Certificate, CertificateChain, makeChain, makeSelfSigned } from '../tools/tls-cert';

export interface TlsFixtures {
  dir: string;
  /** Self-signed, for localhost, 127.0.0.1 and ::1. */
  self: Certificate & { certFile: string; keyFile: string };
  /** An authority (`caFile`) and a server certificate it signed, for the same names. */
  chain: CertificateChain & { caFile: string; certFile: string; keyFile: string };
  /** Self-signed for example.com only: the wrong name for 127.0.0.1. */
  otherName: Certificate;
}

let made: TlsFixtures | null = null;

export function tlsFixtures(): Promise<TlsFixtures> {
  made ??= makeFixtures();
  return Promise.resolve(made);
}

function makeFixtures(): TlsFixtures {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-tls-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const self = makeSelfSigned();
  const chain = makeChain();
  const otherName = makeSelfSigned({ names: ['example.com'] });
  const write = (name: string, text: string): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text, { mode: 0o600 });
    return file;
  };
  return {
    dir,
    self: { ...self, certFile: write('self-cert.pem', self.cert), keyFile: write('self-key.pem', self.key) },
    chain: {
      ...chain,
      caFile: write('ca.pem', chain.ca.cert),
      certFile: write('leaf-cert.pem', chain.leaf.cert),
      keyFile: write('leaf-key.pem', chain.leaf.key),
    },
    otherName,
  };
}
