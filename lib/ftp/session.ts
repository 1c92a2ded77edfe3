/**
 * One FTP session: the state machine behind one control connection.
 *
 * Input is framed by a LineDecoder (CRLF, 4 KiB per line: a longer line gets a 500 and is skipped
 * as it arrives, never buffered). Each line is one command, run at once — except while the session
 * waits (a password being checked, a failed login's delay) or a transfer runs: then commands are
 * held, in order, and run when it is over (RFC 959 pipelining). During a transfer ABOR, STAT and
 * NOOP are answered at once, which is what keeps the control connection responsive.
 *
 *   connected ──USER/PASS──▶ logged in ──PASV/EPSV/PORT/EPRT──▶ data channel ready
 *        ▲   (530 + delay,        │                                    │ RETR/STOR/APPE/LIST/NLST/MLSD: 150
 *        └── lockout: 421)        │ ◀──────── 226 / 425 / 426 / 451 ────┘ transfer (ABOR: 426 then 226)
 *                                  └─QUIT: 221, close (after a running transfer)
 *
 * Replies back up when a client sends and does not read: the control connection is then not read
 * any further and commands already read are held, so our queue stays near the connection's
 * high-water mark (a flood past the held limit is disconnected).
 *
 * Two timers, the server's IdleTimers (O(1) per command): the idle timeout, which only a complete
 * command line restarts — bytes that never make a line do not keep a session alive — and which is
 * paused while a data connection is open or a transfer runs (those have their own timeout); and the
 * login time limit, from the greeting to a successful login, which no command restarts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { binding, constants } from '../native';
import { Connection } from '../stream/connection';
import { LineDecoder } from '../stream/framing';
import type { TlsConnection } from '../stream/tls-connection';
import { IdleEntry, IdleTimers } from '../stream/idle-timers';
import { Timer } from '../timer-queue';
import { COMMANDS, KEEPS_RESTART, UNSUPPORTED } from './commands';
import { DataChannel } from './data-channel';
import { MLST_FACTS, MlstFact } from './listing';
import { Home, PathError, resolveVirtual } from './paths';
import type { Lockout, LoginGuard } from './login-guard';
import { formatReply, normalizeAddress, parseCommand, peekVerb } from './protocol';
import type { PassivePorts } from './data-channel';
import type { Reactor } from '../reactor';
import { clearLoginRefusal, dataRefusal, dataSecurer, FtpsState, FtpTls, secureControl } from './tls';
import type { DataConnection } from './tls';
import { Transfer, TransferResult } from './transfer';
import { makeRecord, makeRecordAsync, passwordProblem, userNameProblem } from './users';
import type { UserRecord, UserStore } from './users';

export const MAX_LINE = 4096;
/** Commands held while a transfer runs before the control connection stops being read. */
const MAX_HELD = 64;
/**
 * Commands held past which a client is flooding, not pipelining: it is disconnected. (What is held
 * comes from the one read in progress when reading stopped, so this bounds the objects, not the bytes.)
 */
const MAX_HELD_HARD = 1024;
/** Answered at once during a transfer; the rest wait for it to end. */
const DURING_TRANSFER = new Set(['ABOR', 'STAT', 'NOOP']);
export const ANONYMOUS_NAMES = new Set(['anonymous', 'ftp']);
/** What each lockout covers, as the replies and the log say it. */
const LOCKED_OUT: Record<Lockout, string> = {
  pair: 'for this user from your address', user: 'for this user', address: 'from your address',
};
const PAUSED_BY_REPLIES = 1;
const PAUSED_BY_HELD = 2;
/** The MLSx facts every session starts with (OPTS MLST gives a session its own set). */
const ALL_FACTS: ReadonlySet<MlstFact> = new Set(MLST_FACTS);
/** Shared while a session holds nothing (most of the time): never pushed to. */
const NOTHING_HELD: Buffer[] = [];
/**
 * Data connections of finished transfers still closing (their final reply is out; they wait for the
 * client's end of stream so that no unread byte turns the close into a reset): at most this many per
 * session — a client that never closes its side has its oldest one closed — each for at most
 * DATA_LINGER_MS.
 */
const MAX_LINGERING = 2;
const DATA_LINGER_MS = 1000;
/** Shared while a session has no data connection closing: never pushed to. */
const NONE_LINGERING: DataConnection[] = [];

export interface Account {
  name: string;
  home: Home;
  readOnly: boolean;
  anonymous: boolean;
}

export interface TransferRecord {
  session: number;
  address: string;
  user: string;
  command: string;
  path: string;
  bytes: number;
  code: number;
  ok: boolean;
  ms: number;
}

/** What a session needs from its server (FtpServer implements it). */
export interface ServerContext {
  readonly reactor: Reactor;
  readonly options: {
    root: string;
    idleTimeoutMs: number;
    loginTimeoutMs: number;
    dataTimeoutMs: number;
    anonymous: boolean;
    allowRegister: boolean;
  };
  readonly users: UserStore | null;
  readonly guard: LoginGuard;
  readonly ports: PassivePorts;
  /** FTPS, when the server has a certificate (lib/ftp/tls.ts). */
  readonly tls: FtpTls | null;
  /** The sessions' idle timers and login time limits. */
  readonly timers: IdleTimers;
  readonly counters: { logins: number; loginFailures: number; transfers: number; bytesIn: number; bytesOut: number; lingeringDataConnections: number };
  log(line: string): void;
  emit(event: 'login' | 'transfer', payload: object): void;
  /** A named user logged in: null, or why the session may not go on (that user's session limit). */
  loggedIn(session: FtpSession, user: string): string | null;
  sessionEnded(session: FtpSession): void;
}

let nextSessionId = 1;

export class FtpSession {
  readonly id = nextSessionId++;
  /** The client's address (IPv4 as dotted quad). */
  readonly peer: string;
  readonly peerPort: number;
  /** Our address on the control connection, as the socket has it (passive listeners bind to it). */
  readonly localRaw: string;
  account: Account | null = null;
  /** The working directory, a virtual path. */
  cwd = '/';
  type: 'A' | 'I' = 'A';
  /** REST's marker for the next RETR/STOR (0: none). */
  restart = 0;
  renameFrom: { virtual: string; real: string } | null = null;
  epsvAll = false;
  mlstFacts: ReadonlySet<MlstFact> = ALL_FACTS;
  data: DataChannel | null = null;
  transfer: Transfer | null = null;
  /** AUTH TLS, PBSZ, PROT (lib/ftp/tls.ts). */
  readonly ftps = new FtpsState();
  /** The control connection: plain, or in TLS after AUTH TLS (or from the start: implicit FTPS). */
  control: Connection | TlsConnection;

  private pendingUser: string | null = null;
  private decoder: LineDecoder;
  /** AUTH TLS was answered: what the client sent after it in clear is dropped until TLS speaks. */
  private discardingPlaintext = false;
  private held: Buffer[] = NOTHING_HELD;
  private lingering: DataConnection[] = NONE_LINGERING;
  /** A password check or a failed login's delay is running: commands wait. */
  private waiting = false;
  private waitTimer: Timer | null = null;
  private aborting = false;
  /** Close after the running transfer: 'quit' (the client ended) or 'shutdown' (the server stops). */
  private leaving: 'quit' | 'shutdown' | null = null;
  private closing = false;
  private ended = false;
  /** Why the control connection is not read: PAUSED_BY_REPLIES | PAUSED_BY_HELD. */
  private pauses = 0;
  /** A command line came in the read being decoded: the idle timer restarts once per read, not per line. */
  private commandSeen = false;
  /** No complete command for idleTimeoutMs (paused while a data connection is open). */
  private readonly idle = new IdleEntry(() => this.guarded(() => this.timedOut('idle')));
  /** Not logged in within loginTimeoutMs of the greeting. */
  private readonly loginLimit = new IdleEntry(() => this.guarded(() => this.timedOut('login')));

  constructor(readonly server: ServerContext, control: Connection) {
    const remote = control.remoteAddress;
    this.peer = normalizeAddress(remote.address);
    this.peerPort = remote.port;
    this.localRaw = control.localAddress.address;
    try {
      // ftplib and others send ABOR's line as urgent data: keep it in the stream.
      binding.setsockopt(control.fd, constants.SOL_SOCKET, constants.SO_OOBINLINE, true);
    } catch {
      // Not fatal: only an urgent ABOR would suffer.
    }
    this.decoder = this.makeDecoder();
    this.control = server.tls?.implicit ? secureControl(this, control) : control;
    this.wire(this.control);
  }

  private makeDecoder(): LineDecoder {
    return new LineDecoder((line) => this.onLine(line), {
      maxLineLength: MAX_LINE,
      dropCarriageReturn: true,
      onOversize: () => this.reply(500, `Command line too long (the limit is ${MAX_LINE} bytes).`),
    });
  }

  private wire(control: Connection | TlsConnection): void {
    // Shared functions, not closures: an idle session should cost as little memory as it can.
    control.data = this;
    control.onData = controlData;
    control.onEnd = controlEnd;
    control.onDrain = controlDrain;
    control.onClose = controlClose;
  }

  /**
   * AUTH TLS was answered (its 234 is queued in clear): the control connection goes on in TLS.
   * Commands the client sent after AUTH in clear — held, or still in the read being decoded — are
   * dropped, never run as if they had come over TLS (the STARTTLS injection).
   */
  startTls(): void {
    const plain = this.control;
    if (!(plain instanceof Connection)) return;
    this.held = NOTHING_HELD;
    this.pauses &= ~PAUSED_BY_HELD;
    this.discardingPlaintext = true;
    this.control = secureControl(this, plain);
    this.wire(this.control);
    if (this.pauses !== 0) this.control.pause();
  }

  /** The first bytes TLS delivered: framing starts afresh (a partial line sent in clear is not continued). */
  private tlsSpoke(): void {
    this.discardingPlaintext = false;
    if (this.ftps.droppedAfterAuth > 0) this.server.log(`${this.tag} ${this.ftps.droppedAfterAuth} command(s) sent in clear after AUTH TLS dropped`);
    this.decoder.stop();
    this.decoder = this.makeDecoder();
  }

  /** A tag for log lines: address, port and user. */
  get tag(): string {
    return `${this.peer}:${this.peerPort}${this.account ? ` [${this.account.name}]` : ''}`;
  }

  get isClosed(): boolean {
    return this.closing || this.ended;
  }

  greet(banner: string): void {
    const { options, timers } = this.server;
    if (options.loginTimeoutMs > 0) timers.track(this.loginLimit, options.loginTimeoutMs);
    if (options.idleTimeoutMs > 0) timers.track(this.idle, options.idleTimeoutMs);
    this.reply(220, banner);
  }

  /** Refuses the session at once (too many clients, locked out): the reply, then close. */
  refuse(text: string): void {
    this.reply(421, text);
    this.close();
  }

  reply(code: number, text: string | readonly string[]): void {
    if (this.closing || this.ended) return;
    if (!this.control.write(formatReply(code, text))) this.pause(PAUSED_BY_REPLIES);
  }

  /** The account's home; commands that need a login only run with one. */
  get home(): Home {
    return this.account!.home;
  }

  /** The virtual path an argument names (throws PathError for names no file may have). */
  resolve(name: string): string {
    return resolveVirtual(this.cwd, name);
  }

  requireWritable(): void {
    if (this.account?.readOnly) throw new PathError(550, 'Permission denied: this account is read-only.');
  }

  /** REST's marker, once. */
  takeRestart(): number {
    const restart = this.restart;
    this.restart = 0;
    return restart;
  }

  // ---- the command loop ----

  private onLine(line: Buffer): void {
    if (this.closing) return;
    if (this.discardingPlaintext) {
      this.ftps.droppedAfterAuth++;
      return;
    }
    if (line.length > 0) this.commandSeen = true; // A complete line, not just bytes: the session is in use.
    const repliesBackedUp = (this.pauses & PAUSED_BY_REPLIES) !== 0;
    if (this.transfer !== null && DURING_TRANSFER.has(peekVerb(line)) && !repliesBackedUp) {
      this.execute(line);
    } else if (this.transfer !== null || this.waiting || this.held.length > 0 || repliesBackedUp) {
      this.hold(line);
    } else {
      this.execute(line);
    }
  }

  private hold(line: Buffer): void {
    if (this.held.length >= MAX_HELD_HARD) {
      this.refuse('Too many commands sent without waiting for replies.');
      return;
    }
    if (this.held === NOTHING_HELD) this.held = [];
    this.held.push(Buffer.from(line));
    if (this.held.length >= MAX_HELD) this.pause(PAUSED_BY_HELD);
  }

  /** Runs held commands until one of them has to wait again. */
  private runHeld(): void {
    if (this.leaving !== null && this.transfer === null && !this.waiting) {
      this.leave(); // The server stopped (or the client ended) while this session waited.
      return;
    }
    while (this.held.length > 0 && this.transfer === null && !this.waiting && !this.closing && (this.pauses & PAUSED_BY_REPLIES) === 0) {
      this.execute(this.held.shift()!);
    }
    if (this.held.length < MAX_HELD) this.unpause(PAUSED_BY_HELD);
  }

  private execute(line: Buffer): void {
    const parsed = parseCommand(line);
    if (!parsed.ok) {
      this.reply(parsed.code, parsed.text);
      return;
    }
    const { verb, arg } = parsed.command;
    const spec = COMMANDS.get(verb);
    if (verb !== 'RNTO') this.renameFrom = null; // RNTO must come right after RNFR.
    if (!KEEPS_RESTART.has(verb)) this.restart = 0;
    if (spec === undefined) {
      this.reply(UNSUPPORTED.has(verb) ? 502 : 500, UNSUPPORTED.has(verb) ? `${verb} is not implemented.` : `Unknown command "${verb}".`);
      return;
    }
    if (spec.auth && this.account === null) {
      this.reply(530, 'Please log in with USER and PASS first.');
      return;
    }
    if (spec.arg === 'required' && arg.trim() === '') {
      this.reply(501, `Syntax error: ${verb} needs an argument.`);
      return;
    }
    if (spec.arg === 'none' && arg.trim() !== '') {
      this.reply(501, `Syntax error: ${verb} takes no argument.`);
      return;
    }
    try {
      spec.run(this, arg);
    } catch (err) {
      if (err instanceof PathError) {
        this.reply(err.code, err.message);
      } else {
        this.server.log(`${this.tag} ${verb}: ${oneLine(err)}`);
        this.reply(451, 'Local error in processing.');
      }
    }
  }

  // ---- login ----

  user(name: string): void {
    const refusal = clearLoginRefusal(this);
    if (refusal !== null) {
      this.reply(530, refusal);
      return;
    }
    if (this.account !== null) {
      this.reply(530, 'Already logged in; QUIT and log in again to change user.');
      return;
    }
    this.pendingUser = name;
    if (this.server.options.anonymous && ANONYMOUS_NAMES.has(name.toLowerCase())) {
      this.reply(331, 'Anonymous login ok; send your e-mail address as password.');
    } else {
      this.reply(331, 'Password required.');
    }
  }

  pass(password: string): void {
    const refusal = clearLoginRefusal(this);
    if (refusal !== null) {
      this.pendingUser = null;
      this.reply(530, refusal);
      return;
    }
    if (this.account !== null) {
      this.reply(503, 'Already logged in.');
      return;
    }
    const name = this.pendingUser;
    this.pendingUser = null;
    if (name === null) {
      this.reply(503, 'Send USER first.');
      return;
    }
    const { guard, options, users } = this.server;
    const lockout = guard.lockout(this.peer, name);
    if (lockout !== null) {
      this.server.log(`${this.tag} login refused for "${name}": ${LOCKED_OUT[lockout.by]}`);
      this.refuse(`Too many failed logins ${LOCKED_OUT[lockout.by]}: try again in ${Math.ceil(lockout.ms / 1000)} s.`);
      return;
    }
    if (options.anonymous && ANONYMOUS_NAMES.has(name.toLowerCase())) {
      this.loggedIn('anonymous', true);
      return;
    }
    if (users === null) {
      this.loginFailed(name);
      return;
    }
    this.setWaiting(true);
    try {
      users.verify(name, password, this.server.reactor.isAttached ? 'async' : 'sync', (ok) => this.guarded(() => {
        if (this.isClosed) return;
        if (ok && guard.lockedFor(this.peer, name) === 0) {
          this.setWaiting(false);
          this.loggedIn(name, false);
          this.runHeld();
        } else {
          this.loginFailed(name);
        }
      }));
    } catch (err) {
      this.setWaiting(false);
      throw err;
    }
  }

  private loggedIn(name: string, anonymous: boolean): void {
    const { options } = this.server;
    const refusal = anonymous ? null : this.server.loggedIn(this, name);
    if (refusal !== null) {
      this.server.log(`${this.tag} login as "${name}" refused: ${refusal}`);
      this.refuse(refusal);
      return;
    }
    const dir = path.join(options.root, name);
    fs.mkdirSync(dir, { recursive: true, mode: anonymous ? 0o755 : 0o700 });
    this.account = { name, home: new Home(dir), readOnly: anonymous, anonymous };
    this.server.timers.untrack(this.loginLimit);
    this.server.guard.succeeded(this.peer, name);
    this.server.counters.logins++;
    this.server.log(`${this.tag} logged in`);
    this.server.emit('login', { session: this.id, address: this.peer, user: name });
    this.reply(230, anonymous ? 'Anonymous access granted: read-only.' : `User ${name} logged in.`);
  }

  /** 530 after a delay that grows with the failures; at a limit, 421 and that login is locked out (login-guard.ts). */
  private loginFailed(name: string): void {
    const { delayMs, locked } = this.server.guard.failed(this.peer, name);
    this.server.counters.loginFailures++;
    this.server.log(`${this.tag} login failed for "${name}"${locked ? `; locked out: too many failures ${LOCKED_OUT[locked]}` : ''}`);
    this.setWaiting(true);
    this.waitTimer = this.server.reactor.setTimeout(() => this.guarded(() => {
      this.waitTimer = null;
      this.setWaiting(false);
      if (locked) {
        this.refuse(`Login incorrect; too many failures ${LOCKED_OUT[locked]}: locked out.`);
        return;
      }
      this.reply(530, 'Login incorrect.');
      this.runHeld();
    }), delayMs);
  }

  /**
   * SITE REGISTER (only when the server allows it): a new account, rate-limited per address. A taken
   * name, and a name whose home is still there (a deleted account's files are not for a newcomer),
   * get exactly the reply a free name gets, after the same scrypt: replies never tell which names
   * exist. Whoever registered a free name logs in; whoever hit a taken one fails to, like any guess.
   */
  register(name: string, password: string): void {
    const { options, users, guard } = this.server;
    if (!options.allowRegister || users === null) {
      this.reply(502, 'Self-registration is disabled on this server.');
      return;
    }
    if (this.account !== null) {
      this.reply(503, 'Already logged in.');
      return;
    }
    if (!guard.mayRegister(this.peer)) {
      this.reply(450, 'Too many registrations from your address; try again later.');
      return;
    }
    const problem = userNameProblem(name) ?? passwordProblem(password);
    if (problem !== null) {
      this.reply(550, `Registration refused: ${problem}.`);
      return;
    }
    const done = (err: Error | null, record?: UserRecord) => this.guarded(() => {
      this.setWaiting(false);
      if (this.isClosed) return;
      if (err !== null || record === undefined) {
        this.server.log(`${this.tag} registration of "${name}" failed: ${err?.message ?? 'no record'}`);
        this.reply(451, 'Registration failed: local error in processing.');
      } else {
        try {
          const home = path.join(options.root, name);
          const taken = fs.lstatSync(home, { throwIfNoEntry: false }) !== undefined ? 'a home by that name exists'
            : !users.addIfFree(name, record) ? 'the name is taken' : null;
          if (taken === null) {
            fs.mkdirSync(home, { recursive: true, mode: 0o700 });
            this.server.log(`${this.tag} registered user "${name}"`);
          } else {
            this.server.log(`${this.tag} registration of "${name}" refused: ${taken} (the client is not told)`);
          }
          this.reply(200, 'Registration received: if the name was free, the account is yours; log in with USER and PASS.');
        } catch (failure) {
          this.server.log(`${this.tag} registration of "${name}" failed: ${(failure as Error).message}`);
          this.reply(451, 'Registration failed: local error in processing.');
        }
      }
      this.runHeld();
    });
    this.setWaiting(true);
    if (this.server.reactor.isAttached) {
      makeRecordAsync(password, done);
      return;
    }
    let record: UserRecord;
    try {
      record = makeRecord(password);
    } catch (failure) {
      done(failure as Error);
      return;
    }
    done(null, record);
  }

  // ---- data ----

  /** Replaces the data channel (a new PASV/PORT forgets the old one). */
  setDataChannel(channel: DataChannel | null): void {
    this.data?.close();
    this.data = channel;
  }

  /** The options every data channel of this session gets. */
  get dataOptions() {
    const { options, reactor } = this.server;
    return {
      reactor,
      timeoutMs: options.dataTimeoutMs,
      // 256 KiB reads: a quarter of the turns and system calls per byte of an upload (one write each).
      connection: { idleTimeoutMs: options.dataTimeoutMs, lingerMs: Math.min(options.dataTimeoutMs, DATA_LINGER_MS), readSize: 256 * 1024 },
      log: (line: string) => this.server.log(`${this.tag} ${line}`),
      secure: dataSecurer(this),
      onChange: () => this.updateIdle(),
    };
  }

  /** A password check or a failed login's delay starts or ends: commands wait meanwhile, and the idle timer too. */
  private setWaiting(waiting: boolean): void {
    this.waiting = waiting;
    this.updateIdle();
  }

  /**
   * The idle timer runs only while the session waits for its client: not while the server works for
   * it (a password check, which takes long on a loaded machine), nor while a data connection is open
   * or a transfer runs (they have their own timeout).
   */
  private updateIdle(): void {
    const ms = this.server.options.idleTimeoutMs;
    if (ms === 0 || this.isClosed) return;
    if (this.waiting || this.transfer !== null || this.data?.isConnected === true) this.server.timers.untrack(this.idle);
    else if (this.idle.list === null) this.server.timers.track(this.idle, ms); // A fresh period from now.
  }

  /** The idle timeout or the login time limit: 421, then close. */
  private timedOut(which: 'idle' | 'login'): void {
    if (this.isClosed) return;
    const { idleTimeoutMs, loginTimeoutMs } = this.server.options;
    this.server.log(`${this.tag} ${which === 'idle' ? 'idle timeout' : 'login time limit'}: closing`);
    this.reply(421, which === 'idle' ? `No command for ${seconds(idleTimeoutMs)} s: closing the control connection.`
      : `Not logged in within ${seconds(loginTimeoutMs)} s: closing the control connection.`);
    this.close();
  }

  /**
   * Starts `make`'s transfer on the data channel set up before: 150, then the bytes, then its reply.
   * `make` opens the file (or builds the listing); what it throws is the command's reply instead.
   */
  startTransfer(make: (onEnd: (result: TransferResult) => void) => Transfer, preface: string): void {
    const channel = this.data;
    if (channel === null) {
      this.reply(425, 'Use PASV, EPSV, PORT or EPRT first.');
      return;
    }
    const refusal = dataRefusal(this);
    if (refusal !== null) {
      this.setDataChannel(null);
      this.reply(refusal.code, refusal.text);
      return;
    }
    // Guarded: an upload ends from the callback of its file's asynchronous close.
    const transfer: Transfer = make((result) => this.guarded(() => this.transferEnded(transfer, result)));
    this.data = null;
    this.transfer = transfer;
    this.updateIdle(); // The data connection's own idle timeout watches a transfer.
    this.reply(150, preface);
    transfer.waitFor(channel);
  }

  private transferEnded(transfer: Transfer, result: TransferResult): void {
    if (this.transfer === transfer) this.transfer = null;
    if (transfer.connection !== null) this.lingerOn(transfer.connection);
    const stats = this.server.counters;
    const ok = result.code === 226;
    stats.transfers++;
    if (transfer.kind === 'STOR' || transfer.kind === 'APPE') stats.bytesIn += result.bytes;
    else stats.bytesOut += result.bytes;
    const record: TransferRecord = {
      session: this.id, address: this.peer, user: this.account?.name ?? '', command: transfer.kind, path: transfer.path,
      bytes: result.bytes, code: result.code, ok, ms: Date.now() - transfer.startedAt,
    };
    this.server.log(`${this.tag} ${transfer.kind} ${transfer.path} ${ok ? 'completed' : `failed (${result.code})`} bytes=${result.bytes} ms=${record.ms}`);
    this.server.emit('transfer', record);
    if (this.ended) return;
    this.updateIdle();
    this.reply(result.code, result.text);
    if (this.leaving !== null) {
      this.leave();
      return;
    }
    if (!this.aborting) this.runHeld();
  }

  /** A finished transfer's data connection, closing: counted, and the oldest closed past MAX_LINGERING. */
  private lingerOn(conn: DataConnection): void {
    if (conn.closed) return;
    if (this.lingering === NONE_LINGERING) this.lingering = [];
    while (this.lingering.length >= MAX_LINGERING) this.lingering.shift()!.destroy();
    this.lingering.push(conn);
    this.server.counters.lingeringDataConnections++;
    conn.onClose = () => {
      this.server.counters.lingeringDataConnections--;
      const at = this.lingering.indexOf(conn);
      if (at >= 0) this.lingering.splice(at, 1);
    };
  }

  /** ABOR: a running transfer ends with 426 and ABOR gets 226; a data channel not used yet is closed (225). */
  abort(): void {
    const transfer = this.transfer;
    if (transfer !== null) {
      this.aborting = true;
      transfer.fail(426, 'Transfer aborted.');
      this.aborting = false;
      this.reply(226, 'ABOR command successful.');
      this.runHeld();
    } else if (this.data !== null) {
      this.setDataChannel(null);
      this.reply(225, 'ABOR command successful; data channel closed.');
    } else {
      this.reply(225, 'No transfer to abort.');
    }
  }

  // ---- ending ----

  quit(): void {
    this.reply(221, 'Goodbye.');
    this.close();
  }

  /** The server stops: an idle session is told at once; one with a transfer after it. */
  shutdown(): void {
    if (this.isClosed) return;
    if (this.transfer !== null || this.waiting) {
      this.leaving = 'shutdown';
      return;
    }
    this.refuse('Server shutting down.');
  }

  /** The graceful close: replies already written still go out. */
  close(): void {
    if (this.closing || this.ended) return;
    this.closing = true;
    this.decoder.stop();
    this.release();
    this.control.close();
  }

  /** Closes now (the grace period is over). */
  destroy(): void {
    this.control.destroy();
  }

  /** The client finished sending: like QUIT without the reply, after a running transfer. */
  private peerEnded(): void {
    if (this.transfer !== null) this.leaving ??= 'quit';
    else this.close();
  }

  private leave(): void {
    if (this.leaving === 'shutdown') this.refuse('Server shutting down.');
    else this.close();
  }

  private release(): void {
    this.server.timers.untrack(this.idle);
    this.server.timers.untrack(this.loginLimit);
    if (this.waitTimer !== null) this.server.reactor.clearTimer(this.waitTimer);
    this.waitTimer = null;
    this.setDataChannel(null);
    this.transfer?.fail(426, 'Session closed.');
    this.transfer = null;
    this.held = NOTHING_HELD;
    for (const conn of [...this.lingering]) conn.destroy();
  }

  private cleanUp(): void {
    this.ended = true;
    this.closing = true;
    this.decoder.stop();
    this.release();
    this.server.sessionEnded(this);
  }

  /** Runs a callback from outside the control connection's own events (a timer, libuv's pool): what it throws ends this session alone. */
  private guarded(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.server.log(`${this.tag} internal error: ${oneLine(err)}`);
      this.destroy();
    }
  }

  private pause(reason: number): void {
    this.pauses |= reason;
    this.control.pause();
  }

  private unpause(reason: number): void {
    if ((this.pauses & reason) === 0) return;
    this.pauses &= ~reason;
    if (this.pauses === 0 && !this.control.closed) this.control.resume();
  }

  /** @internal The control connection's callbacks (shared by every session; `this` is the connection). */
  static readonly control = {
    data(session: FtpSession, data: Buffer): void {
      if (session.discardingPlaintext) session.tlsSpoke();
      session.decoder.push(data);
      if (session.commandSeen) {
        session.commandSeen = false;
        session.server.timers.refresh(session.idle);
      }
    },
    end(session: FtpSession): void {
      session.peerEnded();
    },
    drain(session: FtpSession): void {
      session.unpause(PAUSED_BY_REPLIES);
      session.runHeld();
    },
    close(session: FtpSession): void {
      if (!session.ended) session.cleanUp();
    },
  };
}

/** What the shared callbacks need of either kind of control connection. */
interface ControlConnection {
  data: unknown;
}

function controlData(this: ControlConnection, data: Buffer): void {
  FtpSession.control.data(this.data as FtpSession, data);
}

function controlEnd(this: ControlConnection): void {
  FtpSession.control.end(this.data as FtpSession);
}

function controlDrain(this: ControlConnection): void {
  FtpSession.control.drain(this.data as FtpSession);
}

function controlClose(this: ControlConnection): void {
  FtpSession.control.close(this.data as FtpSession);
}

/** A duration in ms as seconds for a reply: whole seconds, or as many decimals as it has. */
function seconds(ms: number): string {
  return String(ms / 1000);
}

/** An error's stack as one log line (a log line never spans lines: see printable.ts). */
function oneLine(err: unknown): string {
  return ((err as Error).stack ?? String(err)).replace(/\n\s*/g, ' | ');
}
