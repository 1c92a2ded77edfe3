/**
 * The command table: for each verb, whether it needs a login, its argument, its HELP line, and
 * what it does. Replies follow RFC 959, 2389 (FEAT/OPTS), 2428 (EPRT/EPSV), 2640 (UTF-8) and
 * 3659 (SIZE, MDTM, REST STREAM, MLST/MLSD).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataChannel } from './data-channel';
import { entryOf, factLine, featMlst, listLine, MLST_FACTS, readEntries, timeVal, type Entry } from './listing';
import { toDisk } from './names';
import { fsErrorReply, PathError } from './paths';
import { normalizeAddress, parseEprtArgument, parsePortArgument, quotePath } from './protocol';
import type { FtpSession } from './session';
import { featLines, TLS_COMMANDS } from './tls';
import { BufferSender, FileReceiver, FileSender } from './transfer';

export interface CommandSpec {
  /** Needs a logged-in user. */
  auth: boolean;
  arg: 'none' | 'optional' | 'required';
  /** HELP's syntax line. */
  help: string;
  run(session: FtpSession, arg: string): void;
}

/** Commands FTP defines that this server does not offer: 502 rather than 500 ("unknown"). */
export const UNSUPPORTED = new Set(['ACCT', 'SMNT', 'REIN', 'STOU', 'ADAT', 'MIC', 'CONF', 'ENC', 'LPRT', 'LPSV']);

/** Commands that may come between REST and its RETR/STOR without cancelling it. */
export const KEEPS_RESTART = new Set(['REST', 'RETR', 'STOR', 'APPE', 'PASV', 'EPSV', 'PORT', 'EPRT', 'TYPE', 'MODE', 'STRU', 'NOOP', 'STAT']);

const { O_RDONLY, O_WRONLY, O_CREAT, O_APPEND, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const FIRST_UNPRIVILEGED_PORT = 1024;

function statOf(real: string): fs.Stats {
  try {
    return fs.statSync(toDisk(real));
  } catch (err) {
    throw fsErrorReply(err);
  }
}

function attempt<T>(action: () => T): T {
  try {
    return action();
  } catch (err) {
    throw fsErrorReply(err);
  }
}

const notRegularFile = () => new PathError(550, 'Not a regular file.');

/** A regular file, for SIZE and MDTM. */
function regularFile(session: FtpSession, arg: string): fs.Stats {
  const stat = statOf(session.home.existing(session.resolve(arg)));
  if (!stat.isFile()) throw notRegularFile();
  return stat;
}

/** `ls` options some clients put before LIST's path ("-la", "-a dir"): not part of the name. */
function withoutLsOptions(arg: string): string {
  return arg.replace(/^(-[A-Za-z]+\s*)+/, '');
}

/** What a listing command shows: the entries of a directory, or the one entry a file is. */
function listed(session: FtpSession, arg: string): { virtual: string; entries: Entry[]; isDirectory: boolean } {
  const virtual = session.resolve(arg);
  const real = session.home.existing(virtual);
  const stat = statOf(real);
  if (stat.isDirectory()) return { virtual, entries: attempt(() => readEntries(session.home, real)), isDirectory: true };
  const entry = entryOf(session.home, path.dirname(real), path.basename(real));
  return { virtual, entries: entry === null ? [] : [{ ...entry, name: path.posix.basename(virtual) }], isDirectory: false };
}

/**
 * Runs a transfer command's checks and start; whatever refuses it also closes the data channel set
 * up for it (clients open a new one per transfer, and a connection left waiting would only linger).
 */
function transferCommand(session: FtpSession, arg: string, command: (session: FtpSession, arg: string) => void): void {
  try {
    command(session, arg);
  } catch (err) {
    session.setDataChannel(null);
    throw err;
  }
}

function lines(items: string[]): Buffer {
  return Buffer.from(items.map((line) => `${line}\r\n`).join(''));
}

function changeDirectory(session: FtpSession, arg: string): void {
  const virtual = session.resolve(arg);
  const real = session.home.existing(virtual);
  if (!statOf(real).isDirectory()) throw new PathError(550, 'Not a directory.');
  attempt(() => fs.accessSync(toDisk(real), fs.constants.X_OK));
  session.cwd = virtual;
  session.reply(250, `Directory changed to ${quotePath(virtual)}.`);
}

function makeDirectory(session: FtpSession, arg: string): void {
  session.requireWritable();
  const virtual = session.resolve(arg);
  const real = session.home.entry(virtual);
  attempt(() => fs.mkdirSync(toDisk(real), 0o755));
  session.reply(257, `${quotePath(virtual)} created.`);
}

function removeDirectory(session: FtpSession, arg: string): void {
  session.requireWritable();
  const real = session.home.entry(session.resolve(arg));
  attempt(() => fs.rmdirSync(toDisk(real)));
  session.reply(250, 'Directory removed.');
}

function printDirectory(session: FtpSession): void {
  session.reply(257, `${quotePath(session.cwd)} is the current directory.`);
}

function retrieve(session: FtpSession, arg: string): void {
  const offset = session.takeRestart(); // Used up by this command, whatever its outcome (RFC 959 REST).
  const virtual = session.resolve(arg);
  const real = session.home.existing(virtual);
  if (session.data === null) {
    session.reply(425, 'Use PASV, EPSV, PORT or EPRT first.');
    return;
  }
  if (offset > 0 && session.type === 'A') throw new PathError(504, 'Resuming works in binary mode only: send TYPE I.');
  session.startTransfer((onEnd) => {
    // O_NONBLOCK: a FIFO planted under the name opens at once (and fstat refuses it) instead of
    // blocking the reactor's thread, and every session with it, until a writer comes.
    const fd = attempt(() => fs.openSync(toDisk(real), O_RDONLY | O_NOFOLLOW | O_NONBLOCK));
    try {
      const stat = fs.fstatSync(fd);
      if (!stat.isFile()) throw notRegularFile();
      if (offset > stat.size) throw new PathError(554, `Invalid REST marker: the file has ${stat.size} bytes.`);
      return new FileSender(virtual, fd, offset, stat.size - offset, session.type === 'A', onEnd);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }, `Opening ${session.type === 'A' ? 'ASCII' : 'BINARY'} mode data connection for ${virtual}.`);
}

function store(session: FtpSession, arg: string, kind: 'STOR' | 'APPE'): void {
  const offset = session.takeRestart(); // Used up by this command, whatever its outcome (RFC 959 REST).
  session.requireWritable();
  const virtual = session.resolve(arg);
  const real = session.home.writable(virtual);
  if (session.data === null) {
    session.reply(425, 'Use PASV, EPSV, PORT or EPRT first.');
    return;
  }
  if (offset > 0 && kind === 'APPE') throw new PathError(501, 'APPE always appends: it takes no REST marker.');
  if (offset > 0 && session.type === 'A') throw new PathError(504, 'Resuming works in binary mode only: send TYPE I.');
  session.startTransfer((onEnd) => {
    // O_NONBLOCK: a FIFO under the name fails at once (ENXIO) when nobody reads it, and opens at
    // once when someone does; fstat refuses it either way, before anything is truncated. REST n
    // resumes an existing file: without O_CREAT, a missing one is a 550 and nothing is created.
    const flags = O_WRONLY | O_NOFOLLOW | O_NONBLOCK | (offset > 0 ? 0 : O_CREAT) | (kind === 'APPE' ? O_APPEND : 0);
    const fd = attempt(() => fs.openSync(toDisk(real), flags, 0o644));
    try {
      const stat = fs.fstatSync(fd);
      if (!stat.isFile()) throw notRegularFile();
      if (offset > stat.size) throw new PathError(554, `Invalid REST marker: the file has ${stat.size} bytes.`);
      // STOR replaces the file; REST + STOR keeps its first `offset` bytes and writes on from there.
      if (kind === 'STOR') fs.ftruncateSync(fd, offset);
      return new FileReceiver(kind, virtual, fd, kind === 'APPE' ? null : offset, session.type === 'A', onEnd);
    } catch (err) {
      fs.closeSync(fd);
      throw err instanceof PathError ? err : fsErrorReply(err);
    }
  }, `Opening ${session.type === 'A' ? 'ASCII' : 'BINARY'} mode data connection for ${virtual}.`);
}

function list(session: FtpSession, arg: string, kind: 'LIST' | 'NLST' | 'MLSD'): void {
  const shown = listed(session, kind === 'MLSD' ? arg : withoutLsOptions(arg));
  if (kind === 'MLSD' && !shown.isDirectory) throw new PathError(501, 'MLSD lists directories; use MLST for a file.');
  const account = session.account!;
  const now = Date.now();
  const body = lines(shown.entries.map((entry) => kind === 'LIST' ? listLine(entry, now)
    : kind === 'NLST' ? entry.name : factLine(entry, session.mlstFacts, account.readOnly)));
  if (session.data === null) {
    session.reply(425, 'Use PASV, EPSV, PORT or EPRT first.');
    return;
  }
  session.startTransfer((onEnd) => new BufferSender(kind, shown.virtual, body, onEnd), 'Here comes the directory listing.');
}

function passive(session: FtpSession, extended: boolean, arg: string): void {
  const local = normalizeAddress(session.localRaw);
  const ipv6 = local.includes(':');
  if (extended) {
    const proto = arg.trim().toUpperCase();
    if (proto === 'ALL') {
      session.epsvAll = true;
      session.reply(200, 'EPSV ALL ok: only EPSV from now on.');
      return;
    }
    if (proto !== '' && proto !== '1' && proto !== '2') {
      session.reply(501, `Unknown network protocol; use ${ipv6 ? '2' : '1'}.`);
      return;
    }
    if ((proto === '1' && ipv6) || (proto === '2' && !ipv6)) {
      session.reply(522, `Network protocol not supported, use (${ipv6 ? 2 : 1}).`);
      return;
    }
  } else {
    if (session.epsvAll) {
      session.reply(501, 'PASV is not allowed after EPSV ALL.');
      return;
    }
    if (ipv6) {
      session.reply(425, 'PASV cannot describe an IPv6 address: use EPSV.');
      return;
    }
  }
  let channel: DataChannel;
  try {
    channel = DataChannel.passive(session.dataOptions, session.server.ports, session.localRaw, session.peer);
  } catch (err) {
    session.setDataChannel(null);
    session.reply(425, `Can't open a passive port: ${(err as Error).message}.`);
    return;
  }
  session.setDataChannel(channel);
  const port = channel.port;
  if (extended) session.reply(229, `Entering Extended Passive Mode (|||${port}|).`);
  else session.reply(227, `Entering Passive Mode (${local.split('.').join(',')},${port >> 8},${port & 255}).`);
}

/** PORT/EPRT: only to the control connection's own peer, and not to a privileged port (FTP bounce, RFC 2577). */
function active(session: FtpSession, host: string, port: number, extended: boolean): void {
  if (session.epsvAll) {
    session.reply(501, `${extended ? 'EPRT' : 'PORT'} is not allowed after EPSV ALL.`);
    return;
  }
  if (normalizeAddress(host) !== session.peer) {
    session.server.log(`${session.tag} ${extended ? 'EPRT' : 'PORT'} to ${host} refused: not the client's address`);
    session.reply(501, 'Refused: a data connection goes only to your own address (FTP bounce protection).');
    return;
  }
  if (port < FIRST_UNPRIVILEGED_PORT) {
    session.reply(501, 'Refused: a data connection does not go to a privileged port.');
    return;
  }
  session.setDataChannel(DataChannel.active(session.dataOptions, normalizeAddress(host), port));
  session.reply(200, `${extended ? 'EPRT' : 'PORT'} command successful.`);
}

function status(session: FtpSession, arg: string): void {
  if (session.transfer !== null) {
    session.reply(213, `Status: ${session.transfer.status()}`);
    return;
  }
  if (arg.trim() === '') {
    const account = session.account;
    session.reply(211, [
      'FTP server status:',
      ` Connected from ${session.peer}`,
      account ? ` Logged in as ${account.name}${account.readOnly ? ' (read-only)' : ''}` : ' Not logged in',
      ` TYPE: ${session.type === 'A' ? 'ASCII' : 'BINARY'}; STRUcture: File; MODE: Stream`,
      session.data === null ? ' No data connection' : ` Data channel: ${session.data.isPassive ? `passive, port ${session.data.port}` : 'active'}`,
      'End of status.',
    ]);
    return;
  }
  if (session.account === null) {
    session.reply(530, 'Please log in with USER and PASS first.');
    return;
  }
  const shown = listed(session, withoutLsOptions(arg));
  const now = Date.now();
  session.reply(213, [`Status of ${shown.virtual}:`, ...shown.entries.map((e) => listLine(e, now)), 'End of status.']);
}

function mlst(session: FtpSession, arg: string): void {
  const virtual = session.resolve(arg);
  const real = session.home.existing(virtual);
  const entry = entryOf(session.home, path.dirname(real), path.basename(real)) ?? { name: virtual, stat: statOf(real) };
  session.reply(250, [`Listing ${virtual}`, ` ${factLine(entry, session.mlstFacts, session.account!.readOnly, virtual)}`, 'End.']);
}

function options(session: FtpSession, arg: string): void {
  const [name, ...rest] = arg.trim().split(/\s+/);
  const value = rest.join(' ');
  switch (name.toUpperCase()) {
    case 'UTF8':
    case 'UTF-8':
      if (value.toUpperCase() === 'ON' || value === '') session.reply(200, 'UTF-8 is always on.');
      else session.reply(504, 'UTF-8 cannot be turned off: names are UTF-8.');
      return;
    case 'MLST': {
      // RFC 3659 7.9: "OPTS MLST" [SP 1*(factname ";")]. Facts we do not know are left out (200);
      // a list that is not that syntax is a 501.
      if (!/^([^\s;]+;)*$/.test(value)) {
        session.reply(501, 'Syntax: OPTS MLST fact;fact;... (each fact followed by ";", no spaces).');
        return;
      }
      const wanted = value.split(';').map((f) => f.toLowerCase()).filter((f) => f !== '');
      session.mlstFacts = new Set(MLST_FACTS.filter((f) => wanted.includes(f)));
      session.reply(200, `MLST OPTS ${[...session.mlstFacts].map((f) => `${f};`).join('')}`);
      return;
    }
    default:
      session.reply(501, `Unknown option "${name}".`);
  }
}

const SITE_HELP = new Map([['HELP', 'SITE HELP [command]'], ['REGISTER', 'SITE REGISTER name password (when the server allows it)']]);

function site(session: FtpSession, arg: string): void {
  const [sub, ...rest] = arg.trim().split(/\s+/);
  switch (sub.toUpperCase()) {
    case 'HELP': {
      const topic = (rest[0] ?? '').toUpperCase();
      if (topic === '') session.reply(214, ['SITE commands:', ' SITE HELP [command]', ' SITE REGISTER name password (when the server allows it)', 'End.']);
      else if (SITE_HELP.has(topic)) session.reply(214, `Syntax: ${SITE_HELP.get(topic)}`);
      else session.reply(501, `Unknown SITE command "${rest[0]}".`);
      return;
    }
    case 'REGISTER':
      if (rest.length !== 2) {
        session.reply(501, 'Syntax: SITE REGISTER name password');
        return;
      }
      session.register(rest[0], rest[1]);
      return;
    default:
      session.reply(501, `Unknown SITE command "${sub}".`);
  }
}

function help(session: FtpSession, arg: string): void {
  const verb = arg.trim().toUpperCase();
  if (verb === '') {
    const verbs = [...COMMANDS.keys()].sort();
    const rows: string[] = [];
    for (let i = 0; i < verbs.length; i += 8) rows.push(` ${verbs.slice(i, i + 8).map((v) => v.padEnd(5)).join(' ')}`);
    session.reply(214, ['The following commands are recognized:', ...rows, 'Help OK.']);
    return;
  }
  const spec = COMMANDS.get(verb);
  if (spec === undefined) session.reply(501, `Unknown command "${verb}".`);
  else session.reply(214, `Syntax: ${spec.help}`);
}

const table: [string, CommandSpec][] = [
  // Access.
  ['USER', { auth: false, arg: 'required', help: 'USER <name>', run: (s, a) => s.user(a) }],
  ['PASS', { auth: false, arg: 'optional', help: 'PASS <password>', run: (s, a) => s.pass(a) }],
  ['QUIT', { auth: false, arg: 'none', help: 'QUIT (end the session)', run: (s) => s.quit() }],
  // Information and settings.
  ['NOOP', { auth: false, arg: 'none', help: 'NOOP', run: (s) => s.reply(200, 'NOOP ok.') }],
  ['SYST', { auth: false, arg: 'none', help: 'SYST', run: (s) => s.reply(215, 'UNIX Type: L8') }],
  ['FEAT', { auth: false, arg: 'none', help: 'FEAT (list extensions)', run: (s) => s.reply(211, [
    'Features:', ...featLines(s), ' EPRT', ' EPSV', ' MDTM', ` ${featMlst(s.mlstFacts)}`, ' REST STREAM', ' SIZE', ' TVFS', ' UTF8', 'End']) }],
  ['OPTS', { auth: false, arg: 'required', help: 'OPTS UTF8 ON | OPTS MLST fact;fact;...', run: options }],
  ['HELP', { auth: false, arg: 'optional', help: 'HELP [<command>]', run: help }],
  ['STAT', { auth: false, arg: 'optional', help: 'STAT [<path>] (during a transfer: its progress)', run: status }],
  ['SITE', { auth: false, arg: 'required', help: 'SITE HELP | SITE REGISTER <name> <password>', run: site }],
  ['TYPE', { auth: true, arg: 'required', help: 'TYPE A | I', run: (s, a) => {
    // RFC 959: "A" [SP "N"], "I", "L" SP byte-size; clients also send "L8" and "AN" unspaced.
    const type = a.toUpperCase().replace(/\s+/g, '');
    if (type === 'A' || type === 'AN') {
      s.type = 'A';
      s.reply(200, 'Type set to A (ASCII).');
    } else if (type === 'I' || type === 'L8') {
      s.type = 'I';
      s.reply(200, 'Type set to I (binary).');
    } else {
      s.reply(504, `Type "${a}" is not supported; use A or I.`);
    }
  } }],
  ['MODE', { auth: true, arg: 'required', help: 'MODE S', run: (s, a) => {
    const mode = a.trim().toUpperCase();
    if (mode === 'S') s.reply(200, 'Mode set to S (stream).');
    else if (mode === 'B' || mode === 'C') s.reply(504, 'Only stream mode (S) is supported.');
    else s.reply(501, 'Unknown mode.');
  } }],
  ['STRU', { auth: true, arg: 'required', help: 'STRU F', run: (s, a) => {
    const stru = a.trim().toUpperCase();
    if (stru === 'F') s.reply(200, 'Structure set to F (file).');
    else if (stru === 'R' || stru === 'P') s.reply(504, 'Only file structure (F) is supported.');
    else s.reply(501, 'Unknown structure.');
  } }],
  ['ALLO', { auth: true, arg: 'required', help: 'ALLO <bytes> [R <record size>]', run: (s, a) => {
    // RFC 959: ALLO <SP> <decimal-integer> [<SP> R <SP> <decimal-integer>].
    if (/^\d+( R \d+)?$/i.test(a.trim())) s.reply(202, 'No storage allocation necessary.');
    else s.reply(501, 'Syntax: ALLO <bytes> [R <record size>]');
  } }],
  // Directories.
  ['PWD', { auth: true, arg: 'none', help: 'PWD (print the working directory)', run: printDirectory }],
  ['XPWD', { auth: true, arg: 'none', help: 'XPWD (as PWD)', run: printDirectory }],
  ['CWD', { auth: true, arg: 'required', help: 'CWD <path>', run: changeDirectory }],
  ['XCWD', { auth: true, arg: 'required', help: 'XCWD <path> (as CWD)', run: changeDirectory }],
  ['CDUP', { auth: true, arg: 'none', help: 'CDUP (go to the parent directory)', run: (s) => changeDirectory(s, '..') }],
  ['XCUP', { auth: true, arg: 'none', help: 'XCUP (as CDUP)', run: (s) => changeDirectory(s, '..') }],
  ['MKD', { auth: true, arg: 'required', help: 'MKD <path>', run: makeDirectory }],
  ['XMKD', { auth: true, arg: 'required', help: 'XMKD <path> (as MKD)', run: makeDirectory }],
  ['RMD', { auth: true, arg: 'required', help: 'RMD <path>', run: removeDirectory }],
  ['XRMD', { auth: true, arg: 'required', help: 'XRMD <path> (as RMD)', run: removeDirectory }],
  // Files.
  ['DELE', { auth: true, arg: 'required', help: 'DELE <path>', run: (s, a) => {
    s.requireWritable();
    const real = s.home.entry(s.resolve(a));
    if (attempt(() => fs.lstatSync(toDisk(real))).isDirectory()) throw new PathError(550, 'Is a directory: use RMD.');
    attempt(() => fs.unlinkSync(toDisk(real)));
    s.reply(250, 'File removed.');
  } }],
  ['RNFR', { auth: true, arg: 'required', help: 'RNFR <path> (then RNTO)', run: (s, a) => {
    s.requireWritable();
    const virtual = s.resolve(a);
    const real = s.home.entry(virtual);
    attempt(() => fs.lstatSync(toDisk(real)));
    s.renameFrom = { virtual, real };
    s.reply(350, 'Ready for RNTO.');
  } }],
  ['RNTO', { auth: true, arg: 'required', help: 'RNTO <path> (right after RNFR)', run: (s, a) => {
    const from = s.renameFrom;
    s.renameFrom = null;
    if (from === null) {
      s.reply(503, 'Bad sequence of commands: send RNFR first.');
      return;
    }
    s.requireWritable();
    const real = s.home.entry(s.resolve(a));
    attempt(() => fs.renameSync(toDisk(from.real), toDisk(real)));
    s.reply(250, 'Renamed.');
  } }],
  ['SIZE', { auth: true, arg: 'required', help: 'SIZE <path>', run: (s, a) => {
    const stat = regularFile(s, a);
    if (s.type === 'A') throw new PathError(550, 'SIZE is not offered in ASCII mode (the size would depend on the conversion): send TYPE I.');
    s.reply(213, String(stat.size));
  } }],
  ['MDTM', { auth: true, arg: 'required', help: 'MDTM <path>', run: (s, a) => s.reply(213, timeVal(regularFile(s, a).mtime)) }],
  ['MLST', { auth: true, arg: 'optional', help: 'MLST [<path>]', run: mlst }],
  ['REST', { auth: true, arg: 'required', help: 'REST <byte offset> (then RETR or STOR)', run: (s, a) => {
    const text = a.trim();
    const offset = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(offset)) {
      s.reply(501, 'REST takes a byte offset (a non-negative integer).');
      return;
    }
    s.restart = offset;
    s.reply(350, `Restarting at ${offset}. Send RETR or STOR to start the transfer.`);
  } }],
  // Transfers.
  ['RETR', { auth: true, arg: 'required', help: 'RETR <path>', run: (s, a) => transferCommand(s, a, retrieve) }],
  ['STOR', { auth: true, arg: 'required', help: 'STOR <path>', run: (s, a) => transferCommand(s, a, (t, b) => store(t, b, 'STOR')) }],
  ['APPE', { auth: true, arg: 'required', help: 'APPE <path>', run: (s, a) => transferCommand(s, a, (t, b) => store(t, b, 'APPE')) }],
  ['LIST', { auth: true, arg: 'optional', help: 'LIST [<path>]', run: (s, a) => transferCommand(s, a, (t, b) => list(t, b, 'LIST')) }],
  ['NLST', { auth: true, arg: 'optional', help: 'NLST [<path>]', run: (s, a) => transferCommand(s, a, (t, b) => list(t, b, 'NLST')) }],
  ['MLSD', { auth: true, arg: 'optional', help: 'MLSD [<path>]', run: (s, a) => transferCommand(s, a, (t, b) => list(t, b, 'MLSD')) }],
  ['ABOR', { auth: true, arg: 'none', help: 'ABOR (abort the transfer)', run: (s) => s.abort() }],
  // Data connections.
  ['PASV', { auth: true, arg: 'none', help: 'PASV', run: (s) => passive(s, false, '') }],
  ['EPSV', { auth: true, arg: 'optional', help: 'EPSV [1 | 2 | ALL]', run: (s, a) => passive(s, true, a) }],
  ['PORT', { auth: true, arg: 'required', help: 'PORT h1,h2,h3,h4,p1,p2 (your own address only)', run: (s, a) => {
    const target = parsePortArgument(a);
    if (target === null) s.reply(501, 'Syntax: PORT h1,h2,h3,h4,p1,p2');
    else active(s, target.host, target.port, false);
  } }],
  ['EPRT', { auth: true, arg: 'required', help: 'EPRT |proto|address|port| (your own address only)', run: (s, a) => {
    // RFC 2428: a protocol the server does not use on this connection is 522, whatever the rest says.
    const ipv6 = normalizeAddress(s.localRaw).includes(':');
    const proto = a.trim().split(a.trim()[0] ?? '|')[1];
    if ((proto === '1' && ipv6) || (proto === '2' && !ipv6)) {
      s.reply(522, `Network protocol not supported, use (${ipv6 ? 2 : 1}).`);
      return;
    }
    const target = parseEprtArgument(a);
    if (target === null) s.reply(501, 'Syntax: EPRT |1|h1.h2.h3.h4|port| or |2|IPv6 address|port|');
    else active(s, target.host, target.port, true);
  } }],
];

export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map([...table, ...TLS_COMMANDS]);
