/** `iomux ftp`: the FTP server (`serve`) and its accounts (`user add|del|list`). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { FtpServer } from '../../lib/ftp/server';
import { UserStore, userNameProblem } from '../../lib/ftp/users';
import { SocketAddress } from '../../lib/native';
import { availableMechanisms, MechanismName } from '../../lib/selectors/default';
import { addTlsServerOptions, registerCertCommand, tlsServerContext, TlsServerFlags } from './tls-options';
import { checkAccess, checkCanDrop, dropPrivileges, lookUpAccount } from '../privileges';

function integer(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

/** A duration in seconds, decimals allowed (tests use fractions), as milliseconds. */
function seconds(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a number of seconds from ${min} to ${max}`);
    return Math.round(n * 1000);
  };
}

function portRange(value: string): [number, number] {
  const m = /^(\d+)-(\d+)$/.exec(value.trim());
  const range = m ? [Number(m[1]), Number(m[2])] as [number, number] : null;
  if (range === null || range[0] < 1 || range[0] > range[1] || range[1] > 65535) {
    throw new InvalidArgumentError('--passive-ports is a range A-B with 1 <= A <= B <= 65535');
  }
  return range;
}

function describe(address: SocketAddress): string {
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

interface ServeFlags extends TlsServerFlags {
  requireTls?: boolean;
  implicitTls?: boolean;
  tlsSessionReuse: boolean;
  root: string;
  users?: string;
  createUsers?: boolean;
  user?: string;
  host: string;
  port: number;
  mechanism: MechanismName;
  passivePorts?: [number, number];
  maxClients: number;
  maxPerIp: number;
  maxPerUser: number;
  /** ms */
  idleTimeout: number;
  /** ms */
  loginTimeout: number;
  /** ms */
  dataTimeout: number;
  allowRegister?: boolean;
  anonymous?: boolean;
  loginDelay: number;
  maxLoginFailures: number;
  maxUserFailures?: number;
  maxAddressFailures?: number;
  lockout: number;
  grace: number;
  banner?: string;
  quiet?: boolean;
}

function serveCommand(flags: ServeFlags): void {
  if (flags.users === undefined && !flags.anonymous) {
    throw new InvalidArgumentError('nobody could log in: give --users FILE (accounts from `iomux ftp user add`) or --anonymous');
  }
  const account = flags.user === undefined ? null : lookUpAccount(flags.user);
  if (account !== null) checkCanDrop(account);
  if (flags.users !== undefined) {
    if (flags.createUsers && !fs.existsSync(flags.users)) {
      new UserStore(flags.users).createIfMissing();
      if (account !== null) fs.chownSync(flags.users, account.uid, account.gid); // Made by root for the server's user.
    } else {
      existingUsersFile(flags.users, ' (or pass --create-users to start with none)');
    }
  }
  const log = flags.quiet ? () => undefined : (line: string) => process.stderr.write(`${line}\n`);
  const context = tlsServerContext(flags);
  if (context === null && (flags.requireTls || flags.implicitTls || !flags.tlsSessionReuse)) {
    throw new InvalidArgumentError('--require-tls, --implicit-tls and --no-tls-session-reuse need --tls-cert and --tls-key');
  }
  const server = new FtpServer({
    tls: context === null ? null : {
      context, require: flags.requireTls === true, implicit: flags.implicitTls === true, requireSessionReuse: flags.tlsSessionReuse,
    },
    mechanism: flags.mechanism,
    root: flags.root,
    users: flags.users ?? null,
    host: flags.host,
    port: flags.port,
    passivePorts: flags.passivePorts ?? null,
    maxClients: flags.maxClients,
    maxPerIp: flags.maxPerIp,
    maxPerUser: flags.maxPerUser,
    idleTimeoutMs: flags.idleTimeout,
    loginTimeoutMs: flags.loginTimeout,
    dataTimeoutMs: flags.dataTimeout, // the parser's minimum, 0.001 s, rounds to 1 ms
    allowRegister: flags.allowRegister === true,
    anonymous: flags.anonymous === true,
    banner: flags.banner,
    login: {
      delayMs: flags.loginDelay, maxFailures: flags.maxLoginFailures, maxUserFailures: flags.maxUserFailures,
      maxAddressFailures: flags.maxAddressFailures, lockoutMs: flags.lockout * 1000,
    },
    log,
  });
  const address = server.listen();
  if (account !== null) {
    try {
      // Bound (port 21 needs root): from here on, everything runs as the account.
      dropPrivileges(account);
      const { R_OK, W_OK, X_OK } = fs.constants;
      checkAccess(server.options.root, R_OK | W_OK | X_OK, 'the root', account);
      if (flags.users !== undefined) {
        checkAccess(flags.users, R_OK, 'the users file', account);
        // Registration rewrites the file: a temporary file beside it, then a rename.
        if (flags.allowRegister) checkAccess(path.dirname(path.resolve(flags.users)), W_OK | X_OK, 'the users file\'s directory', account);
      }
    } catch (err) {
      server.close();
      throw err;
    }
    log(`running as ${account.name} (uid ${account.uid}, gid ${account.gid})`);
  }
  process.stdout.write(`listening on ${describe(address)}\n`);
  // Attached: scrypt's password checks run on libuv's pool while the reactor serves, and signals arrive here.
  server.reactor.attach();
  const stop = () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    log(`stopping: running transfers have ${flags.grace} s to finish`);
    server.shutdown(flags.grace * 1000, () => {
      process.stdout.write(`stats ${JSON.stringify(server.stats)}\n`);
      server.close();
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** `file`, if it exists: a users file named wrong is an error, not an empty set of accounts. */
function existingUsersFile(file: string, alternative = ''): string {
  if (!fs.existsSync(file)) throw new Error(`no users file ${file}: \`iomux ftp user add NAME --users ${file}\` creates it${alternative}`);
  return file;
}

/** The password for `user add`: stdin's first line (--password-stdin), or typed twice at a terminal without echo. */
async function readPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin) {
    const text = fs.readFileSync(0, 'utf8');
    return text.split(/\r?\n/)[0];
  }
  if (!process.stdin.isTTY) throw new Error('no terminal to type a password at: pipe it in with --password-stdin');
  const first = await promptHidden('Password: ');
  const again = await promptHidden('Again: ');
  if (first !== again) throw new Error('the two passwords differ');
  return first;
}

function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    let typed = '';
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n') {
          finish();
          resolve(typed);
          return;
        }
        if (char === '\u0003') {
          finish();
          reject(new Error('interrupted'));
          return;
        }
        if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
        else typed += char;
      }
    };
    const finish = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}

export function register(program: Command): void {
  const ftp = program
    .command('ftp')
    .description('An FTP server on the multiplexer (RFC 959 and its common extensions), and its accounts');
  const mechanisms = availableMechanisms();

  const serve = ftp
    .command('serve')
    .description('Serve ROOT over FTP: each user in ROOT/NAME, every connection on one reactor')
    .requiredOption('--root <dir>', 'the directory holding every user\'s home (ROOT/NAME)')
    .option('--users <file>', 'the users file written by `iomux ftp user add` (it must exist)')
    .option('--user <name>', 'started as root (to bind port 21): become this user right after binding')
    .option('--create-users', 'with --users: create the file, with no accounts, if it does not exist (for --allow-register)')
    .option('--host <host>', 'numeric address to listen on', '127.0.0.1')
    .option('-p, --port <port>', 'TCP port (0 picks a free one)', integer('port', 0, 65535), 2121)
    .addOption(new Option('-m, --mechanism <name>', 'readiness mechanism').choices(mechanisms).default(mechanisms[0]))
    .option('--passive-ports <A-B>', 'ports for passive data connections (default: any the kernel gives)', portRange)
    .option('--max-clients <n>', 'sessions at most; more are told 421', integer('max-clients', 1, 1_000_000), 512)
    .option('--max-per-ip <n>', 'sessions per client address not logged in as a named user (0: no limit)', integer('max-per-ip', 0, 1_000_000), 32)
    .option('--max-per-user <n>', 'sessions of one named user at most (0: no limit)', integer('max-per-user', 0, 1_000_000), 32)
    .addOption(new Option('--idle-timeout <s>', 'close a control connection without a complete command this long (paused during a transfer; 0: never)')
      .argParser(seconds('idle-timeout', 0, 86400)).default(300_000, '300'))
    .addOption(new Option('--login-timeout <s>', 'close a session not logged in this long after connecting (0: never)')
      .argParser(seconds('login-timeout', 0, 86400)).default(60_000, '60'))
    .addOption(new Option('--data-timeout <s>', 'a data connection must come within this long, and is closed after this long without progress')
      .argParser(seconds('data-timeout', 0.001, 86400)).default(30_000, '30'))
    .option('--allow-register', 'let clients that are not logged in create accounts with SITE REGISTER name password (a demonstration feature; rate-limited per address)')
    .option('--anonymous', 'allow USER anonymous (any password): read-only, in ROOT/anonymous')
    .option('--login-delay <ms>', 'delay of the first failed login\'s 530 (the n-th waits n times as long)', integer('login-delay', 0, 60000), 1000)
    .option('--max-login-failures <n>', 'failures of one user from one address within --lockout that lock that user out from there', integer('max-login-failures', 1, 1000), 5)
    .option('--max-user-failures <n>', 'failures of one user from any address that lock the user out (default: 4 x --max-login-failures)', integer('max-user-failures', 1, 100_000))
    .option('--max-address-failures <n>', 'failures from one address, any user, that lock the address out (default: 10 x --max-login-failures)', integer('max-address-failures', 1, 100_000))
    .option('--lockout <s>', 'how long a lockout lasts', integer('lockout', 1, 86400 * 7), 900)
    .option('--grace <s>', 'on SIGINT/SIGTERM, how long running transfers may take to finish', integer('grace', 0, 3600), 10)
    .option('--banner <text>', 'the 220 greeting\'s text', 'iomux FTP server ready.')
    .option('-q, --quiet', 'no log lines on stderr');
  addTlsServerOptions(serve)
    .option('--require-tls', 'refuse USER/PASS before AUTH TLS, PROT C, and transfers without PROT P')
    .option('--implicit-tls', 'TLS from the first byte of every control connection (implicit FTPS, port 990 style) instead of AUTH TLS')
    .option('--no-tls-session-reuse', 'accept TLS data connections that do not resume the control connection\'s session (Python\'s ftplib.FTP_TLS does not)')
    .addHelpText('after', `
Prints "listening on HOST:PORT" once it accepts connections, and a log line per connection, login and
transfer on stderr (never a password). SIGINT/SIGTERM stop accepting, let running transfers finish
within --grace, close, and print "stats {...}" (JSON).

Examples:
  iomux ftp user add alice --users users.json --root /srv/ftp
  iomux ftp serve --root /srv/ftp --users users.json --port 2121 --passive-ports 50000-50100
  curl -T report.pdf ftp://alice:PASSWORD@127.0.0.1:2121/
  iomux ftp cert --out tls && iomux ftp serve --root /srv/ftp --users users.json --tls-cert tls/cert.pem --tls-key tls/key.pem --require-tls
  curl --ssl-reqd --cacert tls/cert.pem -T report.pdf ftp://alice:PASSWORD@127.0.0.1:2121/`)
    .action(serveCommand);
  registerCertCommand(ftp, 'iomux ftp serve --root /srv/ftp --users users.json --tls-cert tls/cert.pem --tls-key tls/key.pem --require-tls');

  const user = ftp.command('user').description('Manage the accounts of a users file (scrypt hashes, one salt per user)');
  user
    .command('add <name>')
    .description('Add an account; its home is ROOT/NAME')
    .requiredOption('--users <file>', 'the users file (created if missing)')
    .option('--root <dir>', 'create the home ROOT/NAME now (otherwise `serve` creates it at the first login)')
    .option('--password-stdin', 'read the password from standard input\'s first line (else it is asked at the terminal)')
    .action(async (name: string, flags: { users: string; root?: string; passwordStdin?: boolean }) => {
      const problem = userNameProblem(name);
      if (problem !== null) throw new InvalidArgumentError(problem);
      const store = new UserStore(flags.users);
      if (store.has(name)) throw new Error(`user "${name}" exists in ${flags.users}`);
      const password = await readPassword(flags.passwordStdin === true);
      store.add(name, password);
      let home = '';
      if (flags.root !== undefined) {
        const dir = path.join(path.resolve(flags.root), name);
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        home = `; home ${dir}`;
      }
      process.stdout.write(`added ${name}${home}\n`);
    });
  user
    .command('passwd <name>')
    .description('Give an account a new password (a login remembered with the old one is forgotten)')
    .requiredOption('--users <file>', 'the users file')
    .option('--password-stdin', 'read the password from standard input\'s first line (else it is asked at the terminal)')
    .action(async (name: string, flags: { users: string; passwordStdin?: boolean }) => {
      const store = new UserStore(existingUsersFile(flags.users));
      if (!store.has(name)) throw new Error(`no user "${name}" in ${flags.users}`);
      store.setPassword(name, await readPassword(flags.passwordStdin === true));
      process.stdout.write(`password of ${name} changed\n`);
    });
  user
    .command('del <name>')
    .description('Remove an account; its home and files stay unless --remove-home (SITE REGISTER never hands out a name whose home exists)')
    .requiredOption('--users <file>', 'the users file')
    .option('--remove-home', 'also remove ROOT/NAME and everything in it (needs --root)')
    .option('--root <dir>', 'the server\'s --root, where the home is')
    .action((name: string, flags: { users: string; removeHome?: boolean; root?: string }) => {
      if (flags.removeHome && flags.root === undefined) throw new InvalidArgumentError('--remove-home needs --root DIR (the home is ROOT/NAME)');
      if (!new UserStore(existingUsersFile(flags.users)).remove(name)) throw new Error(`no user "${name}" in ${flags.users}`);
      let home = '';
      if (flags.removeHome) {
        // The name was an account's, so it is a plain directory name: ROOT/NAME cannot leave ROOT.
        const dir = path.join(path.resolve(flags.root!), name);
        fs.rmSync(dir, { recursive: true, force: true });
        home = `; home ${dir} removed`;
      }
      process.stdout.write(`removed ${name}${home}\n`);
    });
  user
    .command('list')
    .description('List the accounts, one name a line')
    .requiredOption('--users <file>', 'the users file')
    .action((flags: { users: string }) => {
      for (const name of new UserStore(flags.users).list()) process.stdout.write(`${name}\n`);
    });
}
