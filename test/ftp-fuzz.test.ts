/**
 * Robustness: fast-check drives the command parser with random bytes, and a live server with
 * random bytes and random command sequences (with data connections opened, fed and dropped at
 * random). Nothing may crash or hang: every reply is well-formed, every session ends with an
 * answer to a final NOOP (or a 221/421 it was given), a logged-in bystander is served throughout,
 * and nothing outside the fuzzed user's home changes.
 */
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { COMMANDS } from '../lib/ftp/commands';
import { parseCommand } from '../lib/ftp/protocol';
import { FtpClient, PASSWORD, Reply, startServer, TestServer, USER } from './ftp-fixtures';
import { leakedSince, openKernelObjects } from './helpers';

const TOKENS = ['USER alice', `PASS ${PASSWORD}`, 'PASS wrong', 'PASV', 'EPSV', 'EPSV ALL', 'LIST', 'NLST', 'MLSD', 'RETR f.txt',
  'STOR f.txt', 'APPE f.txt', 'REST 3', 'ABOR', 'STAT', 'TYPE I', 'TYPE A', 'CWD ..', 'MKD d', 'RNFR f.txt', 'RNTO g.txt',
  'PORT 127,0,0,1,4,1', 'SITE REGISTER x y', 'OPTS MLST type;', 'HELP', 'FEAT'];

/** Replies until the one that answers the final NOOP ('NOOP ok.'), opening a data connection for every 227/229. */
async function drain(c: FtpClient, data: net.Socket[], payload: Buffer): Promise<{ replies: Reply[]; closed: boolean }> {
  const replies: Reply[] = [];
  for (;;) {
    let reply: Reply;
    try {
      reply = await c.reply();
    } catch {
      return { replies, closed: true };
    }
    replies.push(reply);
    assert.ok(reply.code >= 100 && reply.code < 600, `a reply code: ${reply.code}`);
    if (reply.code === 200 && reply.text === 'NOOP ok.') return { replies, closed: false };
    const port = reply.code === 229 ? /\|\|\|(\d+)\|/.exec(reply.text)?.[1] : reply.code === 227 ? /,(\d+),(\d+)\)/.exec(reply.text) : null;
    if (port) {
      const number = Array.isArray(port) ? Number(port[1]) * 256 + Number(port[2]) : Number(port);
      const socket = net.connect({ port: number, host: '127.0.0.1' });
      socket.on('error', () => undefined);
      socket.on('data', () => undefined); // Read and drop whatever comes.
      socket.end(payload);
      data.push(socket);
    }
  }
}

describe('ftp fuzz: the command parser and a live server', function () {
  this.timeout(120000);
  let t: TestServer;
  let descriptorsBefore: Map<number, string>;
  let errors: unknown[];
  let bystander: FtpClient;
  let outside: string;

  before(async () => {
    descriptorsBefore = openKernelObjects();
    // Short data timeouts (a transfer whose connection never comes ends quickly), lockouts out of the way.
    t = await startServer({ dataTimeoutMs: 150, login: { delayMs: 1, maxFailures: 1_000_000 }, allowRegister: true, maxPerIp: 0 });
    errors = [];
    t.reactor.onError = (err) => errors.push(err);
    fs.writeFileSync(path.join(t.base, 'outside.txt'), 'untouched');
    outside = JSON.stringify(fs.readdirSync(t.base).sort());
    bystander = await t.login();
  });

  after(async () => {
    await bystander.quit();
    await t.stop();
    assert.deepEqual(leakedSince(descriptorsBefore), []);
  });

  /** After each run: no reactor error, the bystander answered, the fuzz sessions gone, nothing outside the home changed. */
  async function healthy(): Promise<void> {
    assert.deepEqual(errors, []);
    await bystander.expect('NOOP', 200);
    await new Promise<void>((resolve) => {
      const check = () => (t.server.stats.connections === 1 ? resolve() : setImmediate(check));
      check();
    });
    assert.equal(JSON.stringify(fs.readdirSync(t.base).sort()), outside);
    assert.equal(fs.readFileSync(path.join(t.base, 'outside.txt'), 'utf8'), 'untouched');
  }

  it('parseCommand: any bytes give a command (a 3–4 letter verb, an argument without NUL or CR) or a refusal, never an exception (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const result = parseCommand(Buffer.from(bytes));
      if (result.ok) {
        assert.match(result.command.verb, /^[A-Z]{3,4}$/);
        assert.ok(!/[\0\r]/.test(result.command.arg));
      } else {
        assert.ok(result.code === 500 || result.code === 501);
      }
    }), { numRuns: 3000 });
  });

  it('random bytes on a control connection: well-formed replies, no crash, no hang; the server serves the others', async () => {
    const chunk = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.constantFrom(...TOKENS).map((s) => Buffer.from(`${s}\r\n`)),
      fc.constantFrom('\r\n', '\n', '\r', '\xff\xf4\xff\xf2', '\0', ' ').map((s) => Buffer.from(s, 'latin1')),
      fc.integer({ min: 4000, max: 9000 }).map((n) => Buffer.alloc(n, 0x41)),
    );
    await fc.assert(fc.asyncProperty(fc.array(chunk, { maxLength: 25 }), fc.uint8Array({ maxLength: 2000 }), async (chunks, payload) => {
      const c = await t.connect();
      const data: net.Socket[] = [];
      for (const piece of chunks) c.socket.write(piece);
      c.send('\r\nNOOP');
      const { replies, closed } = await drain(c, data, Buffer.from(payload));
      if (closed) {
        const last = replies[replies.length - 1];
        assert.ok(last && (last.code === 221 || last.code === 421), `closed after ${JSON.stringify(last)}`);
      }
      c.destroy();
      for (const socket of data) socket.destroy();
      await c.closed;
      await healthy();
    }), { numRuns: 100 });
  });

  it('random command sequences after login (arguments from paths to junk, data connections at random): always an answer', async () => {
    const verbs = [...COMMANDS.keys()].filter((v) => v !== 'QUIT' && v !== 'NOOP').concat(['FROB', 'REIN']);
    const argument = fc.oneof(
      fc.constantFrom('', '.', '..', '/', '../..', '../../..', 'f.txt', 'd', 'd/e', '*', '-la', 'über 日本', '"q"', ' ', 'I', 'A', '0', '5',
        '|1|127.0.0.1|1|', '127,0,0,1,0,21', 'ALL', 'UTF8 ON', 'MLST size;', 'REGISTER zed long-password'),
      fc.string({ maxLength: 30 }),
      fc.integer({ min: 0, max: 2 ** 53 }).map(String),
    );
    const line = (verb: string, arg: string) => (arg === '' ? verb : `${verb} ${arg}`);
    const single = fc.tuple(fc.constantFrom(...verbs), argument).map(([verb, arg]) => [line(verb, arg)]);
    // A data channel, then a transfer command right after it (random verbs alone would seldom line up).
    const transfer = fc.tuple(fc.constantFrom('EPSV', 'PASV'), fc.option(fc.constantFrom('TYPE I', 'REST 2', 'ABOR', 'STAT'), { nil: undefined }),
      fc.constantFrom('RETR', 'STOR', 'APPE', 'LIST', 'NLST', 'MLSD'), argument, fc.option(fc.constantFrom('ABOR', 'STAT'), { nil: undefined }))
      .map(([setup, between, verb, arg, after]) => [setup, ...(between ? [between] : []), line(verb, arg), ...(after ? [after] : [])]);
    const step = fc.oneof({ weight: 3, arbitrary: single }, { weight: 2, arbitrary: transfer });
    fs.writeFileSync(path.join(t.home, 'f.txt'), 'fuzz me\nplease\n');
    fs.mkdirSync(path.join(t.home, 'd'), { recursive: true });
    await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 10 }).map((steps) => steps.flat()), fc.uint8Array({ maxLength: 5000 }),
      async (commands, payload) => {
        const c = await t.connect();
        const data: net.Socket[] = [];
        await c.login(USER, PASSWORD);
        c.send(Buffer.from(commands.map((line) => `${line}\r\n`).join('')));
        c.send('NOOP');
        const { replies, closed } = await drain(c, data, Buffer.from(payload));
        if (closed) {
          const last = replies[replies.length - 1];
          assert.ok(last && last.code === 421, `closed after ${JSON.stringify(last)}`);
        }
        c.destroy();
        for (const socket of data) socket.destroy();
        await c.closed;
        await healthy();
      }), { numRuns: 150 });
    assert.ok(t.server.stats.transfers >= 20, `only ${t.server.stats.transfers} transfers were tried`);
  });
});
