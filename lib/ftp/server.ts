/**
 * FtpServer: an FTP server (RFC 959 and the common extensions) on a reactor — yours, next to your
 * other handlers, or one of its own. Control connections, passive listeners and data connections
 * all live on that one reactor; nothing runs on another thread except, on an attached reactor,
 * scrypt's password checks in libuv's pool.
 *
 *   const server = new FtpServer({ reactor, root: '/srv/ftp', users: '/srv/ftp-users.json' });
 *   server.listen();          // { address, port }
 *   reactor.attach();
 *   ...
 *   server.shutdown(10_000, () => reactor.close());
 *
 * Events: 'login' ({ session, address, user }) and 'transfer' (a TransferRecord: command, path,
 * bytes, reply code) — for audit logs and tests.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SocketAddress } from '../native';
import { printable } from '../printable';
import { Reactor } from '../reactor';
import { createSelector, MechanismName } from '../selectors/default';
import { Connection } from '../stream/connection';
import { IdleTimers } from '../stream/idle-timers';
import { Listener } from '../stream/listener';
import { Timer } from '../timer-queue';
import { PassivePorts } from './data-channel';
import { LoginGuard, LoginGuardOptions } from './login-guard';
import { FtpSession, ServerContext } from './session';
import { FtpTls, FtpTlsOptions, resolveTls } from './tls';
import { UserStore } from './users';

export interface FtpServerOptions {
  /** The reactor to serve on. Default: a new one on `mechanism` (attach or run it yourself). */
  reactor?: Reactor;
  /** When no reactor is given. Default: the best this platform has (epoll on Linux). */
  mechanism?: MechanismName;
  /** Each user's home is ROOT/NAME (created at first login if missing); anonymous users get ROOT/anonymous. */
  root: string;
  /** The users file (see UserStore), or a store. Default: none (only anonymous logins, if enabled). */
  users?: string | UserStore | null;
  /** Numeric address to listen on. Default 127.0.0.1. */
  host?: string;
  /** Default 2121 (21 needs privileges); 0 picks a free port. */
  port?: number;
  backlog?: number;
  /** Passive data ports [first, last]. Default: any port the kernel gives. */
  passivePorts?: readonly [number, number] | null;
  /** Sessions (and data connections closing after their transfer) at most; more are told 421 and closed. Default 512. */
  maxClients?: number;
  /**
   * Sessions per client address at most (0: no limit), counting those not logged in as a named user
   * (anonymous ones included): a logged-in user counts against maxPerUser instead, so many users
   * behind one address (a NAT, a tunnel) are not capped together. Default 32.
   */
  maxPerIp?: number;
  /** Sessions of one named user at most (0: no limit); the login over it is told 421. Default 32. */
  maxPerUser?: number;
  /**
   * A control connection with no complete command for this long is closed (421); paused while a data
   * connection is open or a transfer runs. 0: never. Default 300 s.
   */
  idleTimeoutMs?: number;
  /** A session not logged in this long after its greeting is closed (421), whatever it sends. 0: never. Default 60 s. */
  loginTimeoutMs?: number;
  /** A data connection must come within this long, and is closed after this long without progress. Default 30 s. */
  dataTimeoutMs?: number;
  /** SITE REGISTER for clients not logged in: the seed's self-registration. A demonstration feature. Default false. */
  allowRegister?: boolean;
  /** USER anonymous / ftp with any password, read-only, in ROOT/anonymous. Default false. */
  anonymous?: boolean;
  /** Failed-login delays and lockouts. */
  login?: LoginGuardOptions;
  /** The 220 greeting. */
  banner?: string;
  /** FTPS (RFC 4217): AUTH TLS with this certificate, and the TLS policy (lib/ftp/tls.ts). Default: none (AUTH is 502). */
  tls?: FtpTlsOptions | null;
  /** Where connections, logins, transfers and refusals are reported (never a password). Default: nowhere. */
  log?: (line: string) => void;
}

export interface FtpStats {
  /** Sessions now (admitted ones). */
  connections: number;
  accepted: number;
  /** Connections told 421 at once: too many clients, too many from one address, locked out, shutting down. */
  refused: number;
  logins: number;
  loginFailures: number;
  transfers: number;
  bytesIn: number;
  bytesOut: number;
  /** Data connections refused because they came from another address than their control connection. */
  foreignDataConnections: number;
  /** Data connections of finished transfers still closing now (at most 2 per session, each for at most 1 s). */
  lingeringDataConnections: number;
}

interface ResolvedOptions {
  root: string;
  host: string;
  port: number;
  backlog: number;
  maxClients: number;
  maxPerIp: number;
  maxPerUser: number;
  idleTimeoutMs: number;
  loginTimeoutMs: number;
  dataTimeoutMs: number;
  allowRegister: boolean;
  anonymous: boolean;
  banner: string;
}

function positiveInteger(name: string, value: number, allowZero = false): number {
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) throw new RangeError(`${name} must be an integer >= ${allowZero ? 0 : 1}; got ${value}`);
  return value;
}

export class FtpServer extends EventEmitter implements ServerContext {
  readonly reactor: Reactor;
  readonly options: ResolvedOptions;
  readonly users: UserStore | null;
  readonly guard: LoginGuard;
  readonly ports: PassivePorts;
  readonly tls: FtpTls | null;
  readonly timers: IdleTimers;
  private readonly ownsReactor: boolean;
  private readonly logLine: (line: string) => void;
  readonly counters = { logins: 0, loginFailures: 0, transfers: 0, bytesIn: 0, bytesOut: 0, lingeringDataConnections: 0 };
  private accepted = 0;
  private refused = 0;
  private listener: Listener<FtpSession> | null = null;
  /** Admitted sessions, and what each counts against: 'address <a>' until a named login, then 'user <name>'. */
  private readonly admitted = new Map<FtpSession, string>();
  private readonly counts = new Map<string, number>();
  private stopping = false;
  private graceTimer: Timer | null = null;
  private whenStopped: (() => void) | null = null;

  constructor(options: FtpServerOptions) {
    super();
    if (typeof options?.root !== 'string' || options.root === '') throw new TypeError('FtpServer needs a root directory');
    const root = path.resolve(options.root);
    if (!fs.statSync(root, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`The FTP root ${root} is not a directory`);
    this.options = {
      root,
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 2121,
      backlog: options.backlog ?? 511,
      maxClients: positiveInteger('maxClients', options.maxClients ?? 512),
      maxPerIp: positiveInteger('maxPerIp', options.maxPerIp ?? 32, true),
      maxPerUser: positiveInteger('maxPerUser', options.maxPerUser ?? 32, true),
      idleTimeoutMs: positiveInteger('idleTimeoutMs', options.idleTimeoutMs ?? 300_000, true),
      loginTimeoutMs: positiveInteger('loginTimeoutMs', options.loginTimeoutMs ?? 60_000, true),
      dataTimeoutMs: positiveInteger('dataTimeoutMs', options.dataTimeoutMs ?? 30_000),
      allowRegister: options.allowRegister === true,
      anonymous: options.anonymous === true,
      banner: options.banner ?? 'iomux FTP server ready.',
    };
    this.tls = resolveTls(options.tls);
    this.users = typeof options.users === 'string' ? new UserStore(options.users) : options.users ?? null;
    if (this.options.allowRegister && this.users === null) throw new Error('allowRegister needs a users file to register into');
    this.ownsReactor = options.reactor === undefined;
    this.reactor = options.reactor ?? new Reactor(options.mechanism ? createSelector(options.mechanism) : undefined);
    this.guard = new LoginGuard(options.login ?? {}, () => this.reactor.now);
    this.ports = new PassivePorts(options.passivePorts ?? null);
    this.timers = new IdleTimers(this.reactor);
    this.logLine = options.log ?? (() => undefined);
  }

  /** Binds and starts accepting; returns the bound address (the real port for port 0). */
  listen(): SocketAddress {
    if (this.listener !== null) throw new Error('This FTP server is already listening');
    const listener = new Listener<FtpSession>(this.reactor, {
      endpoint: { host: this.options.host, port: this.options.port },
      backlog: this.options.backlog,
      // A control connection closed by us (QUIT, 421) waits this long for the client's end.
      connection: { lingerMs: 5000 },
      log: (line) => this.log(line),
    }, (conn) => this.admit(conn));
    const address = listener.listen();
    this.listener = listener;
    return address;
  }

  get address(): SocketAddress | null {
    return this.listener?.address ?? null;
  }

  /** A snapshot of the counters. */
  get stats(): FtpStats {
    return {
      connections: this.admitted.size, accepted: this.accepted, refused: this.refused, ...this.counters,
      foreignDataConnections: this.ports.refusedPeers,
    };
  }

  /**
   * Stops accepting; idle sessions are told 421 and closed, sessions with a transfer running get
   * their 226 first. After `graceMs` whatever is left is closed at once. `done` runs when no
   * session is left (the reactor is yours to close).
   */
  shutdown(graceMs: number, done?: () => void): void {
    this.whenStopped = done ?? null;
    if (this.stopping) return;
    this.stopping = true;
    this.listener?.close();
    for (const session of this.sessions()) session.shutdown();
    this.graceTimer = this.reactor.setTimeout(() => {
      this.graceTimer = null;
      for (const session of this.sessions()) session.destroy();
    }, graceMs);
    this.checkStopped();
  }

  /** Closes the listener and every session now; closes the reactor too if the server made it. */
  close(): void {
    this.stopping = true;
    this.listener?.close();
    for (const session of this.sessions()) session.destroy();
    if (this.graceTimer !== null && !this.reactor.selector.closed) this.reactor.clearTimer(this.graceTimer);
    this.graceTimer = null;
    if (this.ownsReactor) this.reactor.close();
  }

  /** Every log line goes through here: client bytes in it (names, paths) are escaped (printable.ts). */
  log(line: string): void {
    this.logLine(printable(line));
  }

  sessionEnded(session: FtpSession): void {
    const countedAs = this.admitted.get(session);
    if (countedAs !== undefined) {
      this.admitted.delete(session);
      this.uncount(countedAs);
    }
    this.log(`${session.peer}:${session.peerPort} disconnected`);
    this.checkStopped();
  }

  private admit(conn: Connection): void {
    // Until a session takes it over: if building one throws, the Listener destroys the connection,
    // and its close must still let a shutdown waiting for it finish.
    conn.onClose = () => this.checkStopped();
    const session = new FtpSession(this, conn);
    this.accepted++;
    const countedAs = `address ${session.peer}`;
    const fromThere = this.counts.get(countedAs) ?? 0;
    const refusal = this.stopping ? 'Server shutting down.'
      // Data connections still closing after their transfer hold descriptors too: they count.
      : this.admitted.size + this.counters.lingeringDataConnections >= this.options.maxClients
        ? `Too many connections (the limit is ${this.options.maxClients}); try again later.`
        : this.options.maxPerIp > 0 && fromThere >= this.options.maxPerIp
          ? `Too many connections from your address (the limit is ${this.options.maxPerIp}).`
          : this.guard.lockedFor(session.peer) > 0 ? 'Too many failed logins from your address; try again later.' : null;
    if (refusal !== null) {
      this.refused++;
      this.log(`${session.peer}:${session.peerPort} refused: ${refusal}`);
      session.refuse(refusal);
      return;
    }
    this.admitted.set(session, countedAs);
    this.counts.set(countedAs, fromThere + 1);
    this.log(`${session.peer}:${session.peerPort} connected`);
    session.greet(this.options.banner);
  }

  /**
   * The sessions of the control connections the Listener tracks. A connection whose session was
   * never built (new FtpSession threw: the Listener destroyed it, it leaves the set a turn later)
   * has none and is skipped.
   */
  private *sessions(): Iterable<FtpSession> {
    for (const conn of this.listener?.connections ?? []) {
      const session = conn.data as FtpSession | undefined;
      if (session !== undefined) yield session;
    }
  }

  /**
   * A session logged in as a named user: from now on it counts against that user (maxPerUser), not
   * against its address. Returns why it may not (the user's limit), or null.
   */
  loggedIn(session: FtpSession, user: string): string | null {
    const before = this.admitted.get(session);
    if (before === undefined) return null;
    const countedAs = `user ${user}`;
    const sessions = this.counts.get(countedAs) ?? 0;
    if (this.options.maxPerUser > 0 && sessions >= this.options.maxPerUser) {
      return `Too many sessions for this user (the limit is ${this.options.maxPerUser}).`;
    }
    this.uncount(before);
    this.admitted.set(session, countedAs);
    this.counts.set(countedAs, sessions + 1);
    return null;
  }

  private uncount(countedAs: string): void {
    const left = (this.counts.get(countedAs) ?? 1) - 1;
    if (left > 0) this.counts.set(countedAs, left);
    else this.counts.delete(countedAs);
  }

  private checkStopped(): void {
    if (!this.stopping || (this.listener?.connectionCount ?? 0) > 0 || this.whenStopped === null) return;
    if (this.graceTimer !== null) this.reactor.clearTimer(this.graceTimer);
    this.graceTimer = null;
    const done = this.whenStopped;
    this.whenStopped = null;
    done();
  }
}
