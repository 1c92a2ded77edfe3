/** The TLS options the servers' commands share (`ftp serve`, `files serve/put/get`), and their `cert` subcommand. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { TlsContext, tlsUnavailable } from '../../lib/stream/tls-context';
import { makeSelfSigned } from '../tls-cert';

export interface TlsServerFlags {
  tlsCert?: string;
  tlsKey?: string;
}

/** --tls-cert and --tls-key on a server command. */
export function addTlsServerOptions(command: Command): Command {
  return command
    .option('--tls-cert <file>', 'TLS: the server\'s certificate (PEM, then its chain); with --tls-key (make one: cert)')
    .option('--tls-key <file>', 'TLS: the certificate\'s private key (PEM)');
}

/** The server context the flags name, or null without them. */
export function tlsServerContext(flags: TlsServerFlags): TlsContext | null {
  if (flags.tlsCert === undefined && flags.tlsKey === undefined) return null;
  if (flags.tlsCert === undefined || flags.tlsKey === undefined) throw new InvalidArgumentError('--tls-cert and --tls-key go together');
  const why = tlsUnavailable();
  if (why !== null) throw new Error(`TLS is not available: ${why}`);
  return TlsContext.server({ certFile: flags.tlsCert, keyFile: flags.tlsKey });
}

interface CertFlags {
  out: string;
  name?: string[];
  days: number;
  keyType: 'ec' | 'rsa';
  force?: boolean;
}

/** `iomux <server> cert`: a self-signed certificate and key for trying TLS out. */
export function registerCertCommand(parent: Command, serveExample: string): void {
  parent
    .command('cert')
    .description('Make a self-signed TLS certificate and key for trying TLS out (by Node\'s own OpenSSL: nothing else to install)')
    .option('--out <dir>', 'where to write cert.pem and key.pem (key.pem mode 0600)', '.')
    .option('--name <name...>', 'DNS names and numeric addresses it is valid for (default: localhost 127.0.0.1 ::1)')
    .option('--days <n>', 'valid for this many days', (value: string) => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1 || n > 36500) throw new InvalidArgumentError('--days must be an integer from 1 to 36500');
      return n;
    }, 365)
    .addOption(new Option('--key-type <type>', 'the key: EC P-256 or RSA 2048; signed with SHA-256').choices(['ec', 'rsa']).default('ec'))
    .option('--force', 'overwrite cert.pem and key.pem if they exist')
    .addHelpText('after', `
Clients that verify certificates will not trust a self-signed one: give them cert.pem as their CA
(curl --cacert cert.pem, lftp "set ssl:ca-file cert.pem"), or pin its SHA-256 fingerprint, which this
command prints. For a real deployment use a certificate from a CA (e.g. Let's Encrypt).

Example:
  iomux ${parent.name()} cert --out tls
  ${serveExample}`)
    .action(async (flags: CertFlags) => {
      const certFile = path.join(flags.out, 'cert.pem');
      const keyFile = path.join(flags.out, 'key.pem');
      if (!flags.force) {
        for (const file of [certFile, keyFile]) {
          if (fs.existsSync(file)) throw new Error(`${file} exists (--force overwrites it)`);
        }
      }
      const made = makeSelfSigned({ names: flags.name, days: flags.days, key: flags.keyType }, `${parent.name()} cert`);
      fs.mkdirSync(flags.out, { recursive: true });
      fs.writeFileSync(certFile, made.cert, { mode: 0o644 });
      fs.rmSync(keyFile, { force: true }); // A new file, so that the mode below is the one it gets.
      fs.writeFileSync(keyFile, made.key, { mode: 0o600 });
      process.stdout.write(`wrote ${certFile} and ${keyFile}\nSHA-256 fingerprint ${made.fingerprint256}\n`);
    });
}
