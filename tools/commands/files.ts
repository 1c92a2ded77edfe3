/**
 * `iomux files`: the resumable, verified file transfer (lib/files/, docs/file-transfer.md).
 *
 *   iomux files serve --dir DIR [--host H] [--port P] [--mechanism M] [--max-size BYTES]
 *   iomux files put FILE --to HOST:PORT [--name NAME]
 *   iomux files get NAME --from HOST:PORT [-o PATH]
 *
 * put and get resume by default, show a progress bar on a terminal and one plain line otherwise, and
 * exit 0 only when the SHA-256 was verified; otherwise one line says why, and the exit status which
 * (EXIT below).
 */
import * as cliProgress from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import { getFile, Progress, putFile, TransferError, TransferResult } from '../../lib/files/client';
import { FileServer } from '../../lib/files/server';
import { SocketAddress } from '../../lib/native';
import { Reactor } from '../../lib/reactor';
import { availableMechanisms, createSelector, MechanismName } from '../../lib/selectors/default';
import type { TcpEndpoint } from '../../lib/stream/endpoint';
import { docPath } from '../docs';
import { normalizeFingerprint, TlsContext, tlsUnavailable } from '../../lib/stream/tls-context';
import { addTlsServerOptions, registerCertCommand, tlsServerContext, TlsServerFlags } from './tls-options';

/** Exit statuses of put and get: 0 only for a verified file. */
export const EXIT = {
  ok: 0,
  /** Anything else: a local file that cannot be read, a bad argument, an unexpected reply. */
  failed: 1,
  refused: 2,
  mismatch: 3,
  'connection lost': 4,
  'no space': 5,
} as const;

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "1048576", "512k", "10M", "1G" (powers of 1024). */
export function parseBytes(name: string) {
  return (value: string): number => {
    const m = /^(\d+)([kmgt]?)(?:i?b)?$/i.exec(value.trim());
    const n = m ? Number(m[1]) * UNITS[m[2].toLowerCase()] : NaN;
    if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} must be a number of bytes (1048576, 512k, 10M, 1G)`);
    return n;
  };
}

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError('must be an integer from 0 to 65535');
  return n;
}

function numericHost(host: string): string {
  return host === 'localhost' ? '127.0.0.1' : host;
}

/** "127.0.0.1:9000", "[::1]:9000", "localhost:9000". Numeric addresses only: a DNS lookup would block. */
export function parseHostPort(value: string): TcpEndpoint {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(value) ?? /^([^:[\]]+):(\d+)$/.exec(value);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new InvalidArgumentError('expected HOST:PORT, e.g. 127.0.0.1:9000 or [::1]:9000');
  return { host: numericHost(m[1]), port: Number(m[2]) };
}

function describe(address: SocketAddress): string {
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`;
}

function rate(bytes: number, seconds: number): string {
  return seconds > 0 ? `${(bytes / seconds / 1e6).toFixed(1)} MB/s` : '–';
}

interface ServeFlags extends TlsServerFlags {
  dir: string;
  host: string;
  port: number;
  mechanism: MechanismName;
  maxSize?: number;
  quiet?: boolean;
}

interface TransferFlags extends TlsClientFlags {
  to?: TcpEndpoint;
  from?: TcpEndpoint;
  name?: string;
  output?: string;
  limitRate?: number;
  progress: boolean;
}

export function register(program: Command): void {
  const files = program
    .command('files')
    .description('Resumable, verified file transfer: a server for a directory, and put/get clients')
    .addHelpText('after', `
Examples:
  iomux files serve --dir /srv/files --port 9000
  iomux files put ./big.iso --to 127.0.0.1:9000
  iomux files get big.iso --from 127.0.0.1:9000 -o /tmp/big.iso

put and get resume from what is already held (the server's partial, or PATH.partial), and exit 0
only once the SHA-256 is verified. Exit statuses: 1 failed, 2 refused, 3 mismatch, 4 connection
lost, 5 no space. The protocol: ${docPath('file-transfer.md')}.`);

  const mechanisms = availableMechanisms();
  const serveCommand = files
    .command('serve')
    .description('Serve a directory: uploads are resumed from what is held and verified before they are put in place')
    .requiredOption('--dir <dir>', 'the directory served (partial uploads wait in DIR/.iomux-partial/)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('-p, --port <port>', 'TCP port (0 picks a free one)', port, 0)
    .addOption(new Option('-m, --mechanism <name>', 'readiness mechanism').choices(mechanisms).default(mechanisms[0]))
    .option('--max-size <bytes>', 'refuse uploads larger than this, before a byte is stored (512k, 10M, 1G)', parseBytes('--max-size'))
    .option('-q, --quiet', 'do not log transfers');
  addTlsServerOptions(serveCommand)
    .addHelpText('after', `
Prints "listening on HOST:PORT" once it accepts connections, and logs each transfer on stderr.
With --tls-cert and --tls-key every connection is TLS from its first byte (put/get --tls).
SIGINT/SIGTERM stop accepting, end the transfers in flight (keeping their partials, so they
resume), and print "stats {...}" (JSON).`)
    .action((flags: ServeFlags) => serve(flags));

  const put = files
    .command('put')
    .description('Upload FILE; resumes from what the server holds; exit 0 once the server verified the SHA-256')
    .argument('<file>', 'the file to send')
    .requiredOption('--to <host:port>', 'the server', parseHostPort)
    .option('--name <name>', 'the name on the server (default: the file\'s base name)')
    .option('--limit-rate <bytes>', 'send at most this many bytes per second (512k, 10M)', parseBytes('--limit-rate'))
    .option('--no-progress', 'no progress bar, even on a terminal');
  addTlsClientOptions(put).action((file: string, flags: TransferFlags) => transfer('put', file, flags));

  const get = files
    .command('get')
    .description('Download NAME; resumes from PATH.partial when it is of the same version; exit 0 once the SHA-256 is verified')
    .argument('<name>', 'the name on the server')
    .requiredOption('--from <host:port>', 'the server', parseHostPort)
    .option('-o, --output <path>', 'where to write it (default: NAME in the current directory)')
    .option('--limit-rate <bytes>', 'receive at most this many bytes per second (512k, 10M)', parseBytes('--limit-rate'))
    .option('--no-progress', 'no progress bar, even on a terminal');
  addTlsClientOptions(get).action((name: string, flags: TransferFlags) => transfer('get', name, flags));
  registerCertCommand(files, 'iomux files serve --dir /srv/files --port 9000 --tls-cert tls/cert.pem --tls-key tls/key.pem');
}

interface TlsClientFlags {
  tls?: boolean;
  ca?: string;
  fingerprint?: string;
  servername?: string;
}

function addTlsClientOptions(command: Command): Command {
  return command
    .option('--tls', 'speak TLS, verifying the server\'s certificate (against --ca, else Node\'s root certificates) and name')
    .option('--ca <file>', 'TLS: the authority (PEM) the server\'s certificate must chain to: for a self-signed one, the certificate itself')
    .option('--fingerprint <sha256>', 'TLS: accept exactly the certificate with this SHA-256 fingerprint (what `cert` printed) instead of a CA')
    .option('--servername <name>', 'TLS: the name the certificate must carry (default: the host of --to/--from)');
}

/** The client side's TLS options, or null without --tls (a --ca or --fingerprint implies it). */
function tlsClient(flags: TlsClientFlags): { context: TlsContext; servername?: string; fingerprint256?: string } | null {
  if (!flags.tls && flags.ca === undefined && flags.fingerprint === undefined) return null;
  if (flags.ca !== undefined && flags.fingerprint !== undefined) throw new InvalidArgumentError('--ca and --fingerprint are two ways to trust the server: give one');
  const why = tlsUnavailable();
  if (why !== null) throw new Error(`TLS is not available: ${why}`);
  if (flags.fingerprint !== undefined) {
    let pin: string;
    try {
      pin = normalizeFingerprint(flags.fingerprint);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
    return { context: TlsContext.client({ verify: false }), fingerprint256: pin, servername: flags.servername };
  }
  return { context: TlsContext.client({ caFile: flags.ca }), servername: flags.servername };
}

function serve(flags: ServeFlags): void {
  const reactor = new Reactor(createSelector(flags.mechanism));
  const log = flags.quiet ? () => undefined : (line: string) => process.stderr.write(`${line}\n`);
  const server = new FileServer({
    reactor, dir: flags.dir, endpoint: { host: numericHost(flags.host), port: flags.port }, maxSize: flags.maxSize, log, tls: tlsServerContext(flags),
  });
  process.stdout.write(`listening on ${describe(server.listen())}\n`);
  reactor.attach();
  const stop = (): void => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    log('stopping: no new connections; transfers in flight keep their partials');
    server.close(() => {
      reactor.close();
      process.stdout.write(`stats ${JSON.stringify(server.stats)}\n`);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** The progress bar on a terminal (stderr), one bar per phase; nothing otherwise. */
class ProgressView {
  private bar: cliProgress.SingleBar | null = null;
  private phase = '';
  private phaseStart = 0;
  private phaseFrom = 0;

  constructor(private readonly enabled: boolean) {}

  update(p: Progress): void {
    if (!this.enabled) return;
    const phase = p.phase === 'verifying' ? (this.phase || 'receiving') : p.phase;
    if (phase !== this.phase) {
      this.bar?.stop();
      this.phase = phase;
      this.phaseStart = performance.now();
      this.phaseFrom = p.done;
      this.bar = new cliProgress.SingleBar({
        stream: process.stderr,
        format: ` ${phase.padEnd(9)} {bar} {percentage}% | {done} of {size} | {rate} | ETA {eta_formatted}`,
        hideCursor: true,
        etaBuffer: 50,
        fps: 10,
      }, cliProgress.Presets.shades_classic);
      this.bar.start(Math.max(1, p.total), 0, { done: humanBytes(0), size: humanBytes(p.total), rate: '–' });
    }
    const seconds = (performance.now() - this.phaseStart) / 1000;
    this.bar!.update(p.done, { done: humanBytes(p.done), size: humanBytes(p.total), rate: rate(p.done - this.phaseFrom, seconds) });
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}

async function transfer(direction: 'put' | 'get', subject: string, flags: TransferFlags): Promise<void> {
  const tls = tlsClient(flags); // Before the reactor: a bad option is an error, not a process kept alive.
  const reactor = new Reactor();
  reactor.attach();
  const view = new ProgressView(flags.progress && process.stderr.isTTY === true);
  const log = (line: string): void => {
    view.stop();
    process.stderr.write(`${line}\n`);
  };
  const common = { reactor, onProgress: (p: Progress) => view.update(p), log, limitRate: flags.limitRate, tls };
  try {
    let result: TransferResult;
    if (direction === 'put') {
      result = await putFile({ ...common, endpoint: flags.to!, file: subject, name: flags.name });
    } else {
      result = await getFile({ ...common, endpoint: flags.from!, name: subject, output: flags.output });
    }
    view.stop();
    process.stdout.write(`${finalLine(direction, result)}\n`);
    process.exitCode = EXIT.ok;
  } catch (err) {
    view.stop();
    if (!(err instanceof TransferError)) throw err;
    process.stderr.write(`iomux files ${direction}: ${err.reason}: ${err.message}\n`);
    process.exitCode = EXIT[err.reason];
  } finally {
    reactor.close();
  }
}

function finalLine(direction: 'put' | 'get', r: TransferResult): string {
  const what = direction === 'put' ? `stored ${JSON.stringify(r.name)}` : `fetched ${JSON.stringify(r.name)} to ${r.path}`;
  const from = r.offset > 0 ? `resumed at byte ${r.offset}, ` : '';
  return `${what}: ${r.size} bytes, sha256 ${r.sha256} verified; ${from}${r.transferred} bytes in ${r.seconds.toFixed(2)} s ` +
    `(${rate(r.transferred, r.seconds)})`;
}
