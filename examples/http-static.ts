/**
 * An HTTP/1.1 static-file server on the stream layer: GET and HEAD of a directory's files, keep-alive,
 * pipelining (requests are answered in order, each reply queued behind the one before), files sent
 * with sendFile (sendfile(2): the file never passes through JavaScript), request bodies with
 * Content-Length read past with LineDecoder.passThrough, and the errors a client can cause:
 * 400 (malformed), 404 (missing, or outside the directory), 405 (another method), 413 (body too
 * large), 431 (a header line or the header block too large), 505 (not HTTP/1.x).
 *
 * Confinement: the path is percent-decoded once, must be absolute, may not hold NUL, and is resolved
 * (symbolic links included, by realpath) inside the directory; the file is then opened with
 * O_NOFOLLOW | O_NONBLOCK (a FIFO planted in the directory cannot block the server) and served only
 * if fstat says it is a regular file. The descriptor is closed when sendFile's done says the range
 * went out (or was dropped).
 *
 * Run: node dist/examples/http-static.js DIR [port]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Connection, LineDecoder, Listener, Reactor } from '../lib';

const MAX_HEADER_LINE = 8 * 1024;
const MAX_HEADER_BLOCK = 32 * 1024;
const MAX_BODY = 1024 * 1024;
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.txt': 'text/plain; charset=utf-8', '.css': 'text/css', '.js': 'text/javascript',
  '.json': 'application/json', '.png': 'image/png', '.jpg': 'image/jpeg', '.svg': 'image/svg+xml',
};
const REASONS: Record<number, string> = {
  200: 'OK', 400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed', 413: 'Content Too Large',
  431: 'Request Header Fields Too Large', 505: 'HTTP Version Not Supported',
};

const root = fs.realpathSync(process.argv[2] ?? '.');

interface Request {
  method: string;
  target: string;
  version: string;
  headers: Map<string, string>;
  headerBytes: number;
}

/** One client: a LineDecoder reads the request line and headers, passThrough skips a body. */
function serve(conn: Connection): void {
  let request: Request | null = null;
  const lines: LineDecoder = new LineDecoder((line) => {
    if (!conn.writable) {
      lines.stop(); // An error answered and the connection closing: the rest is not read.
      return;
    }
    if (request === null) {
      if (line.length === 0) return; // Blank lines before a request are allowed (RFC 9112 §2.2).
      request = startRequest(conn, line.toString('latin1'));
      return;
    }
    if (line.length > 0) {
      if (!addHeader(conn, request, line.toString('latin1'))) request = null;
      return;
    }
    const finished = request;
    request = null;
    const length = bodyLength(conn, finished);
    if (length < 0) return;
    // Read past the body (this server wants none), then answer: replies stay in request order.
    if (length > 0) lines.passThrough(length, () => undefined);
    respond(conn, finished);
  }, {
    maxLineLength: MAX_HEADER_LINE,
    dropCarriageReturn: true,
    onOversize: () => fail(conn, 431, 'A header line is too long'),
  });
  conn.onData = (data) => lines.push(data);
  conn.onDrain = () => conn.resume();
  conn.setIdleTimeout(30_000);
}

/** Parses `METHOD target HTTP/x.y`; null (after answering 400 or 505) when it cannot be served. */
function startRequest(conn: Connection, line: string): Request | null {
  const match = /^([A-Z]+) (\S+) HTTP\/(\d)\.(\d)$/.exec(line);
  if (match === null) return fail(conn, 400, 'Malformed request line');
  if (match[3] !== '1') return fail(conn, 505, 'Only HTTP/1.x is spoken here');
  return { method: match[1], target: match[2], version: `1.${match[4]}`, headers: new Map(), headerBytes: line.length };
}

function addHeader(conn: Connection, request: Request, line: string): boolean {
  request.headerBytes += line.length;
  if (request.headerBytes > MAX_HEADER_BLOCK) return fail(conn, 431, 'The header block is too large') !== null;
  const colon = line.indexOf(':');
  if (colon <= 0 || /\s/.test(line[colon - 1])) return fail(conn, 400, 'Malformed header line') !== null;
  const name = line.slice(0, colon).toLowerCase();
  const value = line.slice(colon + 1).trim();
  if (name === 'content-length' && request.headers.has(name) && request.headers.get(name) !== value) {
    return fail(conn, 400, 'Conflicting Content-Length') !== null;
  }
  request.headers.set(name, value);
  return true;
}

/** The body's length from Content-Length (0 without one); -1 after answering an error. */
function bodyLength(conn: Connection, request: Request): number {
  if (request.headers.has('transfer-encoding')) {
    fail(conn, 400, 'Transfer-Encoding is not supported: send a Content-Length');
    return -1;
  }
  const value = request.headers.get('content-length');
  if (value === undefined) return 0;
  if (!/^\d{1,15}$/.test(value)) {
    fail(conn, 400, 'Malformed Content-Length');
    return -1;
  }
  const length = Number(value);
  if (length > MAX_BODY) {
    fail(conn, 413, `A body over ${MAX_BODY} bytes`);
    return -1;
  }
  return length;
}

function keepAlive(request: Request): boolean {
  const connection = (request.headers.get('connection') ?? '').toLowerCase();
  return request.version === '1.1' ? !connection.split(/\s*,\s*/).includes('close') : connection === 'keep-alive';
}

function respond(conn: Connection, request: Request): void {
  const keep = keepAlive(request);
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    reply(conn, 405, keep, 'GET and HEAD only\n', 'Allow: GET, HEAD\r\n');
    return;
  }
  const file = resolve(request.target);
  if (file === null) {
    reply(conn, 404, keep, 'Not found\n');
    return;
  }
  const head = request.method === 'HEAD';
  if (file.directory) {
    const names = fs.readdirSync(file.path).sort();
    const body = `<!doctype html><ul>${names.map((n) => `<li><a href="${encodeURIComponent(n)}">${escapeHtml(n)}</a>`).join('')}</ul>\n`;
    reply(conn, 200, keep, body, 'Content-Type: text/html; charset=utf-8\r\n', head);
    return;
  }
  const type = TYPES[path.extname(file.path).toLowerCase()] ?? 'application/octet-stream';
  const ok = conn.write(header(200, keep, file.size, `Content-Type: ${type}\r\n`));
  if (head || file.size === 0) {
    fs.closeSync(file.fd);
  } else {
    conn.sendFile(file.fd, 0, file.size, () => fs.closeSync(file.fd));
  }
  finishReply(conn, keep, ok);
}

/** The open regular file (or the directory) `target` names inside the root; null for anything else. */
function resolve(target: string): { path: string; directory: boolean; fd: number; size: number } | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(target.split('?')[0]);
  } catch {
    return null;
  }
  if (!decoded.startsWith('/') || decoded.includes('\0')) return null;
  let real: string;
  try {
    real = fs.realpathSync(path.join(root, path.posix.normalize(decoded)));
  } catch {
    return null;
  }
  if (real !== root && !real.startsWith(root + path.sep)) return null; // A link out of the directory.
  let fd: number;
  try {
    fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return null;
  }
  const stat = fs.fstatSync(fd);
  if (stat.isDirectory()) {
    fs.closeSync(fd);
    return { path: real, directory: true, fd: -1, size: 0 };
  }
  if (!stat.isFile()) {
    fs.closeSync(fd); // A FIFO, a socket, a device: not served.
    return null;
  }
  return { path: real, directory: false, fd, size: stat.size };
}

function header(status: number, keep: boolean, length: number, extra = ''): string {
  return `HTTP/1.1 ${status} ${REASONS[status]}\r\nContent-Length: ${length}\r\n${extra}` +
    `Connection: ${keep ? 'keep-alive' : 'close'}\r\n\r\n`;
}

function reply(conn: Connection, status: number, keep: boolean, body: string, extra = '', head = false): void {
  const bytes = Buffer.from(body);
  conn.cork();
  let ok = conn.write(header(status, keep, bytes.length, extra));
  if (!head) ok = conn.write(bytes);
  conn.uncork();
  finishReply(conn, keep, ok);
}

function finishReply(conn: Connection, keep: boolean, ok: boolean): void {
  if (!keep) conn.close();
  else if (!ok) conn.pause(); // A client that pipelines faster than it reads: onDrain resumes.
}

/** Answers an error that ends the connection (the rest of the stream cannot be trusted); returns null. */
function fail(conn: Connection, status: number, why: string): null {
  if (conn.writable) reply(conn, status, false, `${why}\n`);
  return null;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

const reactor = new Reactor();
const listener = new Listener(reactor, { endpoint: { port: Number(process.argv[3] ?? 0) } }, serve);
console.log(`http on 127.0.0.1:${listener.listen().port} serving ${root}`);
reactor.attach();
process.on('SIGINT', () => listener.shutdown(1000, () => reactor.close()));
