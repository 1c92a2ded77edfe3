/**
 * FTPS (RFC 4217): TLS for FTP, as policy on the stream layer's TlsConnection.
 *
 * - Explicit: `AUTH TLS` (234, then the control connection's handshake: plaintext the client sent
 *   after AUTH is dropped, never run as a command), `PBSZ 0`, `PROT P` (data connections in TLS) or
 *   `PROT C` (in clear). `CCC` (back to clear) is refused. Implicit (port 990 style): TLS from the
 *   control connection's first byte.
 * - `require` (`--require-tls`): USER and PASS before AUTH TLS are refused (530), `PROT C` is refused
 *   (534), and a transfer without `PROT P` is refused (521), so neither a password nor a file ever
 *   crosses the network in clear.
 * - Session reuse on data connections (on by default, vsftpd's `require_ssl_reuse`): a data
 *   connection's handshake must resume the TLS session of its own control connection, or the
 *   transfer is refused (522). Each control connection gets a random session-id context that its
 *   data connections share, so only sessions made on that control connection resume: whoever
 *   reaches the passive port first — another host behind the same address — cannot take the data.
 */
import * as crypto from 'node:crypto';
import { Connection } from '../stream/connection';
import { TlsConnection } from '../stream/tls-connection';
import { TlsContext } from '../stream/tls-context';
import type { CommandSpec } from './commands';
import type { DataFailure } from './data-channel';
import type { FtpSession } from './session';

export interface FtpTlsOptions {
  /** The server's certificate and key (TlsContext.server). */
  context: TlsContext;
  /** Refuse logins and transfers in clear. Default false. */
  require?: boolean;
  /** TLS from the first byte of every control connection (implicit FTPS). Default false: explicit, AUTH TLS. */
  implicit?: boolean;
  /** A data connection must resume its control connection's TLS session. Default true. */
  requireSessionReuse?: boolean;
}

export interface FtpTls {
  context: TlsContext;
  require: boolean;
  implicit: boolean;
  requireSessionReuse: boolean;
}

export function resolveTls(options: FtpTlsOptions | null | undefined): FtpTls | null {
  if (options === null || options === undefined) return null;
  if (!(options.context instanceof TlsContext) || !options.context.isServer) {
    throw new TypeError('tls.context must be a server TlsContext (TlsContext.server({ cert, key }))');
  }
  return {
    context: options.context,
    require: options.require === true,
    implicit: options.implicit === true,
    requireSessionReuse: options.requireSessionReuse !== false,
  };
}

/** A data connection: plain, or TLS after PROT P. */
export type DataConnection = Connection | TlsConnection;

/** One session's TLS state. */
export class FtpsState {
  /** The control connection speaks TLS. */
  secured = false;
  /** PBSZ came (after AUTH), so PROT may follow. */
  pbsz = false;
  /** PROT: P, data connections in TLS; C, in clear. */
  protection: 'C' | 'P' = 'C';
  /** Plaintext lines that followed AUTH TLS in the same read, dropped (logged once). */
  droppedAfterAuth = 0;
  /** Shared by the control connection and its data connections: only their sessions resume each other. */
  readonly sessionIdContext = crypto.randomBytes(16);
}

const AUTH_MECHANISMS = new Set(['TLS', 'TLS-C', 'SSL', 'TLS-P']);

/** Why a login must wait for AUTH TLS, or null. */
export function clearLoginRefusal(session: FtpSession): string | null {
  const tls = session.server.tls;
  if (tls === null || !tls.require || session.ftps.secured) return null;
  return 'This server requires TLS: send AUTH TLS before USER and PASS.';
}

/** Why a transfer may not open a data connection under the current PROT, or null (RFC 4217: 521). */
export function dataRefusal(session: FtpSession): DataFailure | null {
  const tls = session.server.tls;
  if (tls === null || !tls.require || session.ftps.protection === 'P') return null;
  return { code: 521, text: 'Data connections must be protected: send PBSZ 0 and PROT P (this server requires TLS).' };
}

/** FEAT's lines for TLS (RFC 4217 §6), when the server has a certificate. */
export function featLines(session: FtpSession): string[] {
  return session.server.tls === null ? [] : [' AUTH TLS', ' PBSZ', ' PROT'];
}

/** The control connection in TLS from its first byte (implicit FTPS), or after AUTH TLS's 234. */
export function secureControl(session: FtpSession, control: Connection): TlsConnection {
  const tls = session.server.tls!;
  session.ftps.secured = true;
  return TlsConnection.server(control, {
    context: tls.context,
    sessionIdContext: session.ftps.sessionIdContext,
    handshakeTimeoutMs: session.server.options.dataTimeoutMs,
  });
}

/**
 * With PROT P, the DataChannel's hook for each data connection: TLS at once (whichever side
 * speaks first), then the checks; `done(conn)` once it is secure, or `done(null, failure)`.
 */
export function dataSecurer(session: FtpSession): ((conn: Connection, done: (conn: DataConnection | null, failure?: DataFailure) => void) => void) | undefined {
  const tls = session.server.tls;
  if (tls === null || session.ftps.protection !== 'P') return undefined;
  return (conn, done) => {
    let settled = false;
    const settle = (secured: DataConnection | null, failure?: DataFailure): void => {
      if (settled) return;
      settled = true;
      done(secured, failure);
    };
    const secured = TlsConnection.server(conn, {
      context: tls.context, sessionIdContext: session.ftps.sessionIdContext, handshakeTimeoutMs: session.server.options.dataTimeoutMs,
      // The client resumes the control connection's session every time: new tickets would only sit
      // unread in an uploading client's buffer and turn its close into a reset that loses the tail.
      tickets: 0,
    });
    secured.onSecure = function () {
      if (tls.requireSessionReuse && !this.sessionReused) {
        session.server.log(`${session.tag} data connection refused: its TLS session is not the control connection's (no session reuse)`);
        settle(null, { code: 522, text: 'Data connection refused: its TLS handshake must resume the control connection\'s session (session reuse is required).' });
        this.destroy();
        return;
      }
      this.onError = this.onClose = null;
      settle(this);
    };
    secured.onClose = (err) => {
      if (settled) return;
      const code = (err as { code?: string } | null)?.code ?? 'closed';
      session.server.log(`${session.tag} data connection: TLS handshake failed (${code})`);
      settle(null, { code: 425, text: `Can't open data connection: its TLS handshake failed (${code}).` });
    };
  };
}

/** AUTH, PBSZ, PROT and CCC: the command table's entries for FTPS. */
export const TLS_COMMANDS: ReadonlyMap<string, CommandSpec> = new Map<string, CommandSpec>([
  ['AUTH', { auth: false, arg: 'required', help: 'AUTH TLS (then the TLS handshake)', run: (s, arg) => {
    const mechanism = arg.trim().toUpperCase();
    if (s.server.tls === null) s.reply(502, 'AUTH is not available: this server has no TLS certificate.');
    else if (!AUTH_MECHANISMS.has(mechanism)) s.reply(504, `AUTH ${mechanism} is not supported; use AUTH TLS.`);
    else if (s.ftps.secured) s.reply(503, 'Already using TLS.');
    else if (s.account !== null) s.reply(503, 'AUTH must come before the login.');
    else {
      // AUTH SSL and TLS-P once implied PROT P (a draft before RFC 4217); clients send PROT
      // themselves now (curl sends AUTH SSL, then PBSZ and PROT), so nothing is implied here.
      s.reply(234, `AUTH ${mechanism} successful.`);
      s.startTls();
    }
  } }],
  ['PBSZ', { auth: false, arg: 'required', help: 'PBSZ 0', run: (s, arg) => {
    if (s.server.tls === null) s.reply(502, 'PBSZ is not available: this server has no TLS certificate.');
    else if (!s.ftps.secured) s.reply(503, 'PBSZ needs a TLS control connection: send AUTH TLS first.');
    else if (!/^\d+$/.test(arg.trim())) s.reply(501, 'Syntax: PBSZ 0');
    else {
      s.ftps.pbsz = true;
      s.reply(200, 'PBSZ=0');
    }
  } }],
  ['PROT', { auth: false, arg: 'required', help: 'PROT P (data in TLS) | C (in clear)', run: (s, arg) => {
    const level = arg.trim().toUpperCase();
    if (s.server.tls === null) s.reply(502, 'PROT is not available: this server has no TLS certificate.');
    else if (!s.ftps.secured) s.reply(503, 'PROT needs a TLS control connection: send AUTH TLS first.');
    else if (!s.ftps.pbsz) s.reply(503, 'Send PBSZ 0 before PROT.');
    else if (level === 'P') {
      s.ftps.protection = 'P';
      s.reply(200, 'Protection level set to Private: data connections use TLS.');
    } else if (level === 'C') {
      if (s.server.tls!.require) {
        s.reply(534, 'PROT C refused: this server requires protected data connections (PROT P).');
      } else {
        s.ftps.protection = 'C';
        s.reply(200, 'Protection level set to Clear: data connections are not encrypted.');
      }
    } else if (level === 'S' || level === 'E') {
      s.reply(536, `PROT ${level} is not supported by TLS; use P or C.`);
    } else {
      s.reply(504, `Unknown protection level "${level}"; use P or C.`);
    }
  } }],
  ['CCC', { auth: false, arg: 'none', help: 'CCC (refused: the control connection stays encrypted)', run: (s) => {
    if (s.server.tls === null) s.reply(502, 'CCC is not available: this server has no TLS.');
    else s.reply(534, 'CCC refused: the control connection stays encrypted.');
  } }],
]);
