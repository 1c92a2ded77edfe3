/**
 * FTP's wire format (RFC 959, RFC 2640 for UTF-8): one command per line in, numbered replies out.
 *
 * A command line is `VERB[ SP argument]`, the verb 3 or 4 letters in any case. Telnet commands
 * (RFC 854) are stripped, wherever they are: clients send `IAC IP IAC DM` before an urgent ABOR, and
 * a stack that delivers the urgent byte apart leaves command bytes without their IAC before the verb.
 * A line that is not UTF-8, or that holds a NUL or a CR, is refused here: no path built from it ever
 * reaches the file system.
 */

export interface Command {
  /** Upper case. */
  verb: string;
  /** Everything after the first space, as sent (may be empty). */
  arg: string;
}

export type ParseResult = { ok: true; command: Command } | { ok: false; code: number; text: string };

const IAC = 0xff;
/** The first Telnet command code (SE); 240–254 are commands, 255 is IAC itself. */
const FIRST_COMMAND = 240;
const SE = 240;
/** Subnegotiation: IAC SB ... IAC SE. */
const SB = 250;
/** Telnet WILL, WONT, DO, DONT: each takes one option byte. */
const WILL = 251;
const DONT = 254;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const VERB = /^[A-Za-z]{3,4}$/;

/**
 * The line without Telnet commands (RFC 854): IAC IAC stands for a 0xFF byte; IAC WILL/WONT/DO/DONT
 * and their option, IAC SB ... IAC SE, and IAC with any other command (IP, DM, ...) are dropped; an
 * IAC before a byte that is no command is dropped alone. Then command bytes (240–255) left before the
 * verb without their IAC — a stray IP or DM of an urgent ABOR — are dropped too: a verb starts with a
 * letter, so nothing a client means is lost.
 */
export function stripTelnet(line: Buffer): Buffer {
  let start = 0;
  if (line.indexOf(IAC) < 0) {
    while (start < line.length && line[start] >= FIRST_COMMAND) start++;
    return start === 0 ? line : line.subarray(start);
  }
  const out = Buffer.allocUnsafe(line.length);
  let n = 0;
  for (let i = 0; i < line.length; i++) {
    const byte = line[i];
    if (byte !== IAC) {
      if (n > 0 || byte < FIRST_COMMAND) out[n++] = byte; // Stray command bytes before the verb go.
      continue;
    }
    const command = line[i + 1];
    if (command === IAC) {
      out[n++] = IAC;
      i++;
    } else if (command === SB) {
      let end = i + 2;
      while (end < line.length && !(line[end] === IAC && line[end + 1] === SE)) end++;
      i = end + 1;
    } else if (command !== undefined && command >= WILL && command <= DONT) {
      i += 2;
    } else if (command !== undefined && command >= FIRST_COMMAND) {
      i++;
    }
    // Else an IAC before a byte that is no command (or at the end): the IAC alone goes.
  }
  return out.subarray(0, n);
}

/** One command line (its CRLF already removed by the framing) → a command, or the reply that refuses it. */
export function parseCommand(line: Buffer): ParseResult {
  let text: string;
  try {
    text = utf8.decode(stripTelnet(line));
  } catch {
    return { ok: false, code: 501, text: 'Syntax error: the command line is not UTF-8.' };
  }
  if (text.includes('\0') || text.includes('\r')) {
    return { ok: false, code: 501, text: 'Syntax error: NUL and CR are not allowed in a command line.' };
  }
  const space = text.indexOf(' ');
  const verb = space < 0 ? text : text.slice(0, space);
  if (!VERB.test(verb)) return { ok: false, code: 500, text: 'Syntax error, command unrecognized.' };
  return { ok: true, command: { verb: verb.toUpperCase(), arg: space < 0 ? '' : text.slice(space + 1) } };
}

/** The verb of a line, cheaply (upper case), or '' when it has none: decides what runs during a transfer. */
export function peekVerb(line: Buffer): string {
  const stripped = stripTelnet(line);
  let end = stripped.indexOf(0x20);
  if (end < 0) end = stripped.length;
  if (end < 3 || end > 4) return '';
  return stripped.toString('latin1', 0, end).toUpperCase();
}

/**
 * A reply: `code text` on one line, or `code-first`, the middle lines, `code last` (RFC 959 4.2).
 * A middle line that starts with a digit gets a space first, so no client takes it for the end.
 */
export function formatReply(code: number, text: string | readonly string[]): string {
  const lines = (typeof text === 'string' ? text.split('\n') : [...text]).map((l) => l.replace(/[\r\n]/g, ' '));
  if (lines.length === 1) return `${code} ${lines[0]}\r\n`;
  let out = `${code}-${lines[0]}\r\n`;
  for (let i = 1; i < lines.length - 1; i++) out += /^\d/.test(lines[i]) ? ` ${lines[i]}\r\n` : `${lines[i]}\r\n`;
  return `${out}${code} ${lines[lines.length - 1]}\r\n`;
}

/** A path inside a 257 reply: quoted, with its own quotes doubled (RFC 959 appendix II). */
export function quotePath(path: string): string {
  return `"${path.replace(/"/g, '""')}"`;
}

/** IPv4 as dotted quad: '::ffff:1.2.3.4' (an IPv4 peer on a dual-stack socket) → '1.2.3.4'. */
export function normalizeAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (!address.includes(':')) return address;
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1); // Canonical IPv6 text.
  } catch {
    return address.toLowerCase();
  }
}

/** PORT's argument `h1,h2,h3,h4,p1,p2` → host and port, or null. */
export function parsePortArgument(arg: string): { host: string; port: number } | null {
  const parts = arg.trim().split(',');
  if (parts.length !== 6 || !parts.every((p) => /^\d{1,3}$/.test(p.trim()))) return null;
  const n = parts.map((p) => Number(p.trim()));
  if (n.some((x) => x > 255)) return null;
  return { host: n.slice(0, 4).join('.'), port: n[4] * 256 + n[5] };
}

/** EPRT's argument `<d>proto<d>address<d>port<d>` (RFC 2428) → family, host and port, or null. */
export function parseEprtArgument(arg: string): { family: 1 | 2; host: string; port: number } | null {
  const d = arg[0];
  if (d === undefined || d.charCodeAt(0) < 33 || d.charCodeAt(0) > 126) return null;
  const fields = arg.split(d);
  if (fields.length !== 5 || fields[0] !== '' || fields[4] !== '') return null;
  const [, proto, host, portText] = fields;
  if (proto !== '1' && proto !== '2') return null;
  if (!/^\d{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port < 1 || port > 65535) return null;
  const family = proto === '1' ? 1 : 2;
  if (family === 1 && !/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) return null;
  if (family === 1 && host.split('.').some((x) => Number(x) > 255)) return null;
  if (family === 2 && !isIPv6(host)) return null;
  return { family, host, port };
}

function isIPv6(host: string): boolean {
  if (!/^[0-9a-fA-F:.]+$/.test(host) || !host.includes(':')) return false;
  try {
    new URL(`http://[${host}]/`);
    return true;
  } catch {
    return false;
  }
}
