/**
 * The FTP server's security model, one test per promise: confinement to the home, logins (delay,
 * lockout, no anonymous unless enabled, no password in logs), self-registration off by default
 * and rate-limited, and the limits (line length, clients in total and per address, idle control
 * and data connections, data connections only from the control connection's peer, no FTP bounce).
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { FtpServer } from '../lib/ftp/server';
import { binding, constants } from '../lib/native';
import { Reactor } from '../lib/reactor';
import { createSelector } from '../lib/selectors/default';
import { connectTo, FtpClient, makeUsersFile, PASSWORD, readAll, serve, Served, startServer, TestServer, USER } from './ftp-fixtures';
import { leakedSince, openKernelObjects } from './helpers';

/** Everything under `dir`, recursively, with sizes: to show nothing changed outside a home. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d).sort()) {
      const full = path.join(d, name);
      const stat = fs.lstatSync(full);
      out.push(`${path.relative(dir, full)} ${stat.isDirectory() ? 'dir' : stat.size}`);
      if (stat.isDirectory()) walk(full);
    }
  };
  walk(dir);
  return out;
}

describe('ftp security: confinement', function () {
  this.timeout(30000);
  let t: TestServer;
  let before: Map<number, string>;
  let outside: string[];

  beforeEach(async () => {
    before = openKernelObjects();
    t = await startServer();
    // The host's side: a secret next to the root, another user's home, and symlinks out of alice's home.
    fs.writeFileSync(path.join(t.base, 'secret.txt'), 'not for alice');
    fs.mkdirSync(path.join(t.root, 'bob'));
    fs.writeFileSync(path.join(t.root, 'bob', 'bob.txt'), 'bob only');
    fs.symlinkSync(t.base, path.join(t.home, 'escape-dir'));
    fs.symlinkSync(path.join(t.base, 'secret.txt'), path.join(t.home, 'escape-file'));
    fs.symlinkSync('/etc', path.join(t.home, 'etc'));
    fs.writeFileSync(path.join(t.home, 'mine.txt'), 'alice');
    fs.symlinkSync('mine.txt', path.join(t.home, 'inside-link'));
    outside = snapshot(t.base).filter((line) => !line.startsWith(`root${path.sep}${USER}`) && !line.startsWith('users.json'));
  });

  afterEach(async () => {
    // Nothing outside alice's home changed, whatever the test tried.
    assert.deepEqual(snapshot(t.base).filter((line) => !line.startsWith(`root${path.sep}${USER}`) && !line.startsWith('users.json')), outside);
    assert.equal(fs.readFileSync(path.join(t.base, 'secret.txt'), 'utf8'), 'not for alice');
    await t.stop();
    assert.deepEqual(leakedSince(before), []);
  });

  it('.. chains and absolute paths stay inside the home', async () => {
    const c = await t.login();
    await c.expect('CWD ../../../..', 250);
    assert.equal((await c.expect('PWD', 257)).text, '"/" is the current directory.');
    await c.expect('CDUP', 250);
    assert.equal((await c.expect('PWD', 257)).text, '"/" is the current directory.');
    for (const name of ['../secret.txt', '../../secret.txt', '../bob/bob.txt', '/../../secret.txt', '/etc/passwd', '../../../../etc/passwd', '..\\..\\secret.txt']) {
      await c.expect('EPSV', 229);
      await c.expect(`RETR ${name}`, 550);
      await c.expect(`SIZE ${name}`, 550);
    }
    await c.expect('TYPE I', 200);
    // Writing "above" the home lands in the home.
    assert.equal((await c.upload('STOR ../../../escaped.txt', Buffer.from('x'))).code, 226);
    assert.ok(fs.existsSync(path.join(t.home, 'escaped.txt')));
    await c.expect('MKD ../../newdir', 257);
    assert.ok(fs.statSync(path.join(t.home, 'newdir')).isDirectory());
    await c.expect('RNFR escaped.txt', 350);
    await c.expect('RNTO ../../../moved.txt', 250);
    assert.ok(fs.existsSync(path.join(t.home, 'moved.txt')));
    await c.expect('RMD /', 550); // The home itself.
    await c.expect('RNFR /', 550);
    await c.quit();
  });

  it('a symlink inside the home that points outside is refused (and not listed); one that stays inside works', async () => {
    const c = await t.login();
    await c.expect('TYPE I', 200);
    await c.expect('CWD escape-dir', 550);
    await c.expect('CWD etc', 550);
    for (const name of ['escape-file', 'escape-dir/secret.txt', 'etc/passwd', 'escape-dir/root/bob/bob.txt']) {
      await c.expect('EPSV', 229);
      await c.expect(`RETR ${name}`, 550);
    }
    await c.expect('EPSV', 229);
    await c.expect('STOR escape-file', 550); // Writing through the link would overwrite secret.txt.
    await c.expect('EPSV', 229);
    await c.expect('APPE escape-file', 550);
    await c.expect('EPSV', 229);
    await c.expect('STOR escape-dir/planted.txt', 550);
    await c.expect('MKD escape-dir/planted', 550);
    await c.expect('EPSV', 229);
    await c.expect('LIST escape-dir', 550);
    await c.expect('MDTM escape-file', 550);
    await c.expect('MLST escape-dir', 550);
    await c.expect('RNFR escape-dir/secret.txt', 550);
    // The listing shows what alice can use: the inside link (as its target), not the ones out.
    const names = (await c.download('NLST')).data.toString().trim().split('\r\n').sort();
    assert.deepEqual(names, ['inside-link', 'mine.txt']);
    assert.equal((await c.download('RETR inside-link')).data.toString(), 'alice');
    await c.quit();
  });

  it('names containing NUL or CR are refused; LF ends a command, so no name can hold one', async () => {
    const c = await t.login();
    for (const raw of ['RETR a\0b\r\n', 'MKD a\0b\r\n', 'STOR x\r\ry\r\n', 'DELE mine.txt\0\r\n', 'CWD \0\r\n']) {
      c.send(Buffer.from(raw));
      assert.equal((await c.reply()).code, 501, JSON.stringify(raw));
    }
    c.send(Buffer.from('MKD evil\nname\r\n')); // Two lines: "MKD evil", then "name" (no such command).
    assert.equal((await c.reply()).code, 257);
    assert.equal((await c.reply()).code, 500);
    assert.ok(!fs.readdirSync(t.home).some((n) => /[\0\r\n]/.test(n)));
    c.send(Buffer.from([0x4d, 0x4b, 0x44, 0x20, 0xc3, 0x28, 0x0d, 0x0a])); // "MKD " and invalid UTF-8.
    assert.equal((await c.reply()).code, 501);
    await c.quit();
  });

  it('listing / shows the home, never the host\'s root', async () => {
    const c = await t.login();
    const listed = (await c.download('NLST /')).data.toString().trim().split('\r\n').sort();
    assert.deepEqual(listed, ['inside-link', 'mine.txt']);
    const hostRoot = fs.readdirSync('/');
    assert.ok(!listed.some((n) => hostRoot.includes(n)), 'no entry of the host\'s /');
    const long = (await c.download('LIST /')).data.toString();
    assert.ok(!/\bbin\b|\betc\b|\busr\b/.test(long), long);
    assert.equal((await c.expect('STAT /', 213)).lines.length, 4); // Header, two entries, end.
    await c.quit();
  });
});

describe('ftp security: a FIFO where a file should be', function () {
  this.timeout(30000);
  let base: string;
  let home: string;
  let served: Served;

  beforeEach(async () => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-ftp-fifo-'));
    home = path.join(base, 'root', USER);
    fs.mkdirSync(home, { recursive: true });
    fs.writeFileSync(path.join(home, 'plain.txt'), 'plain bytes');
    execFileSync('mkfifo', [path.join(home, 'pipe')]);
    // In a process of its own: a server that blocked in open() would not take the test runner with it.
    served = await serve(['--root', path.join(base, 'root'), '--users', makeUsersFile(base), '--port', '0', '--login-delay', '10']);
  });

  afterEach(async () => {
    served.child.kill('SIGKILL');
    await served.exited;
    fs.rmSync(base, { recursive: true, force: true });
  });

  async function login(): Promise<FtpClient> {
    const c = await FtpClient.connect(served.port);
    await c.login(USER, PASSWORD);
    await c.expect('TYPE I', 200);
    return c;
  }

  /** Another session lists and downloads: it answers only if no open() holds the server's thread. */
  async function bystanderServed(other: FtpClient): Promise<void> {
    const names = (await other.download('NLST')).data.toString().split('\r\n').filter((n) => n !== '').sort();
    assert.deepEqual(names, ['pipe', 'plain.txt']);
    assert.equal((await other.download('RETR plain.txt')).data.toString(), 'plain bytes');
  }

  it('RETR of a FIFO with no writer is a 550 at once, and another session is served meanwhile', async () => {
    const [a, b] = [await login(), await login()];
    await a.expect('EPSV', 229);
    const refused = a.command('RETR pipe');
    await bystanderServed(b);
    assert.equal((await refused).code, 550);
    await a.expect('NOOP', 200);
    await bystanderServed(a);
  });

  it('STOR and APPE of a FIFO: 550 with no reader (ENXIO) and with one (fstat); not a byte goes into the pipe', async () => {
    const [a, b] = [await login(), await login()];
    for (const command of ['STOR pipe', 'APPE pipe']) {
      await a.expect('EPSV', 229);
      const refused = a.command(command);
      await bystanderServed(b);
      assert.equal((await refused).code, 550, `${command} with no reader`);
    }
    // A reader on the pipe (non-blocking, so this test does not wait for a writer either).
    const reader = fs.openSync(path.join(home, 'pipe'), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    try {
      for (const command of ['STOR pipe', 'APPE pipe', 'RETR pipe']) {
        await a.expect('EPSV', 229);
        assert.equal((await a.command(command)).code, 550, `${command} with a reader`);
      }
      await a.expect('REST 5', 350);
      await a.expect('EPSV', 229);
      assert.equal((await a.command('STOR pipe')).code, 550, 'REST + STOR');
      let n = 0;
      try {
        n = fs.readSync(reader, Buffer.alloc(16));
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'EAGAIN'); // Empty, a writer may still come.
      }
      assert.equal(n, 0, 'nothing was written into the pipe');
    } finally {
      fs.closeSync(reader);
    }
    assert.ok(fs.lstatSync(path.join(home, 'pipe')).isFIFO(), 'the FIFO is still a FIFO');
    await bystanderServed(a);
  });
});

describe('ftp security: logins', function () {
  this.timeout(30000);
  let t: TestServer | null = null;
  let before: Map<number, string>;

  beforeEach(() => {
    before = openKernelObjects();
  });

  afterEach(async () => {
    await t?.stop();
    t = null;
    assert.deepEqual(leakedSince(before), []);
  });

  it('a failed login is answered late (the delay grows with each failure), and the session waits meanwhile', async () => {
    t = await startServer({ login: { delayMs: 300, maxFailures: 10 } });
    const c = await t.connect();
    for (const failures of [1, 2]) {
      await c.expect(`USER ${USER}`, 331);
      const sent = process.hrtime.bigint();
      c.send('PASS wrong password');
      c.send('NOOP'); // Held until the 530: nothing jumps the queue.
      assert.equal((await c.reply()).code, 530);
      const waited = Number(process.hrtime.bigint() - sent) / 1e6;
      assert.ok(waited >= 300 * failures, `the ${failures}. failure was answered after ${waited} ms`);
      assert.equal((await c.reply()).code, 200);
    }
    await c.login(USER, PASSWORD); // The right password still works (no lockout yet), and at once.
    await c.quit();
  });

  /** USER then a wrong PASS: the reply's code (530, or 421 once a lockout starts). */
  async function guess(c: FtpClient, user = USER): Promise<number> {
    await c.expect(`USER ${user}`, 331);
    return (await c.command('PASS wrong guess')).code;
  }

  it('after maxFailures that user is locked out from that address: 421 and closed, even the right password; others are not', async () => {
    t = await startServer({ login: { delayMs: 1, maxFailures: 3, lockoutMs: 60000 } });
    t.server.users!.add('bob', 'bob-password');
    const c = await t.connect();
    assert.deepEqual([await guess(c), await guess(c), await guess(c)], [530, 530, 421]);
    await c.closed;
    const again = await t.connect();
    assert.equal(again.greeting.code, 220, 'the address is not refused: others behind it log in');
    await again.expect(`USER ${USER}`, 331);
    assert.equal((await again.command(`PASS ${PASSWORD}`)).code, 421, 'the right password is refused during the lockout');
    await again.closed;
    assert.ok(t.server.guard.lockedFor('127.0.0.1', USER) > 0);
    const bob = await t.connect();
    await bob.login('bob', 'bob-password'); // Behind the same address: bob's typos are his, alice's hers.
    await bob.quit();
    const elsewhere = await t.connect({ localAddress: '127.0.0.2' });
    await elsewhere.login(USER, PASSWORD);
    await elsewhere.quit();
  });

  it('another account\'s success clears nothing: 12 guesses with an anonymous or own-account login between each lock at the limit', async () => {
    t = await startServer({ anonymous: true, login: { delayMs: 1, maxFailures: 5, lockoutMs: 60000 } });
    t.server.users!.add('mallory', 'mallory-password');
    const codes: number[] = [];
    for (let i = 0; i < 12; i++) {
      const guesser = await t.connect();
      if (guesser.greeting.code !== 220) {
        codes.push(guesser.greeting.code);
        continue;
      }
      codes.push(await guess(guesser));
      guesser.destroy();
      // The attacker's own successful login, from the same address, between every two guesses.
      const own = await t.connect();
      if (i % 2 === 0) await own.login('anonymous', 'guest@example.com');
      else await own.login('mallory', 'mallory-password');
      await own.quit();
    }
    assert.deepEqual(codes, [530, 530, 530, 530, 421, 421, 421, 421, 421, 421, 421, 421]);
    const owner = await t.connect();
    await owner.expect(`USER ${USER}`, 331);
    assert.equal((await owner.command(`PASS ${PASSWORD}`)).code, 421, 'still locked for alice from this address');
  });

  it('one user\'s typos behind a shared address (a NAT, a tunnel) lock neither the address nor the other users', async () => {
    t = await startServer({ login: { delayMs: 1, maxFailures: 3, lockoutMs: 60000 } });
    t.server.users!.add('bob', 'bob-password');
    for (let session = 0; session < 3; session++) {
      const typist: FtpClient = await t.connect();
      assert.equal(await guess(typist, 'bob'), session < 2 ? 530 : 421);
      typist.destroy();
    }
    const colleagues = await Promise.all([t.connect(), t.connect(), t.connect()]);
    for (const colleague of colleagues) {
      assert.equal(colleague.greeting.code, 220);
      await colleague.login(USER, PASSWORD);
    }
    for (const colleague of colleagues) await colleague.quit();
  });

  it('failures of one user from many addresses lock that user (maxUserFailures); many names from one address lock the address (maxAddressFailures)', async () => {
    t = await startServer({ login: { delayMs: 1, maxFailures: 2, maxUserFailures: 4, maxAddressFailures: 6, lockoutMs: 60000 } });
    for (const address of ['127.0.0.2', '127.0.0.3']) {
      const c = await t.connect({ localAddress: address });
      assert.deepEqual([await guess(c), await guess(c)], [530, 421]);
    }
    const fresh = await t.connect({ localAddress: '127.0.0.4' });
    await fresh.expect(`USER ${USER}`, 331);
    assert.equal((await fresh.command(`PASS ${PASSWORD}`)).code, 421, 'alice is locked from every address');
    const flood = await t.connect({ localAddress: '127.0.0.5' });
    const codes: number[] = [];
    for (let i = 0; i < 6 && !flood.isClosed; i++) codes.push(await guess(flood, `name${i}`));
    assert.deepEqual(codes, [530, 530, 530, 530, 530, 421]);
    const refused = await t.connect({ localAddress: '127.0.0.5' });
    assert.equal(refused.greeting.code, 421, 'the flooding address is refused at the greeting');
    await refused.closed;
    const neighbour = await t.connect({ localAddress: '127.0.0.6' });
    assert.equal(neighbour.greeting.code, 220);
  });

  it('no anonymous login unless enabled; with --anonymous it is read-only in ROOT/anonymous', async () => {
    t = await startServer();
    const c = await t.connect();
    for (const name of ['anonymous', 'ftp']) {
      await c.expect(`USER ${name}`, 331);
      await c.expect('PASS guest@example.com', 530);
    }
    await c.quit();
    await t.stop();
    t = await startServer({ anonymous: true });
    fs.mkdirSync(path.join(t.root, 'anonymous'));
    fs.writeFileSync(path.join(t.root, 'anonymous', 'pub.txt'), 'public');
    const guest = await t.connect();
    await guest.login('anonymous', 'guest@example.com');
    assert.equal((await guest.download('RETR pub.txt')).data.toString(), 'public');
    await guest.expect('EPSV', 229);
    await guest.expect('STOR new.txt', 550);
    await guest.expect('MKD d', 550);
    await guest.expect('DELE pub.txt', 550);
    await guest.expect('RNFR pub.txt', 550);
    await guest.expect('RETR ../alice/anything', 550); // Confined like anyone: there is no such file in ROOT/anonymous.
    await guest.quit();
  });

  it('the password never appears in a log line or in the users file', async () => {
    t = await startServer({ allowRegister: true });
    const registered = 'zebra-password-42';
    const wrong = 'quokka-wrong-secret';
    const c = await t.connect();
    await c.expect(`USER ${USER}`, 331);
    await c.expect(`PASS ${wrong}`, 530);
    await c.expect(`SITE REGISTER carol ${registered}`, 200);
    await c.login('carol', registered);
    await c.expect('NOOP', 200);
    await c.quit();
    const log = t.log.join('\n');
    assert.match(log, /login failed for "alice"/);
    assert.match(log, /registered user "carol"/);
    for (const secret of [PASSWORD, registered, wrong]) {
      assert.ok(!log.includes(secret), `the log holds "${secret}"`);
      assert.ok(!fs.readFileSync(path.join(t.base, 'users.json'), 'utf8').includes(secret), `users.json holds "${secret}"`);
    }
  });

  it('self-registration is off by default; when on it creates the home, refuses taken or bad names, and is rate-limited per address', async () => {
    t = await startServer();
    const c = await t.connect();
    await c.expect('SITE REGISTER dave long-enough-pw', 502);
    await c.quit();
    await t.stop();
    t = await startServer({ allowRegister: true });
    const r = await t.connect();
    await r.expect('SITE REGISTER dave short', 550); // Password too short.
    await r.expect('SITE REGISTER ../evil long-enough-pw', 550); // Not a name.
    await r.expect(`SITE REGISTER ${USER} long-enough-pw`, 200); // Taken: the reply does not say so (next test).
    await r.expect('SITE REGISTER dave long-enough-pw', 450); // A fourth attempt within the hour: over the limit.
    await r.quit();
    const other = await t.connect({ localAddress: '127.0.0.3' });
    await other.expect('SITE REGISTER dave long-enough-pw', 200);
    assert.ok(fs.statSync(path.join(t.root, 'dave')).isDirectory());
    await other.login('dave', 'long-enough-pw');
    await other.expect('SITE REGISTER erin long-enough-pw', 503); // Logged in already.
    await other.quit();
  });

  it('SITE REGISTER answers a taken name exactly as a free one (code and text), and takes over neither an account nor a deleted account\'s home', async () => {
    t = await startServer({ allowRegister: true, login: { registrationsPerHour: 100, delayMs: 1 } });
    t.server.users!.add('bob', 'bob-password');
    fs.mkdirSync(path.join(t.root, 'bob'));
    fs.writeFileSync(path.join(t.root, 'bob', 'bob.txt'), 'bob\'s file');
    assert.ok(t.server.users!.remove('bob')); // `user del bob`: the account goes, the home stays.
    const c = await t.connect();
    const replies = async (password: string) => {
      const answers: string[] = [];
      for (const name of [USER, 'bob', 'newcomer']) answers.push(JSON.stringify(await c.command(`SITE REGISTER ${name} ${password}`)));
      return answers;
    };
    const [taken, deleted, free] = await replies('new-long-password');
    assert.equal(taken, free, 'a taken name is answered like a free one');
    assert.equal(deleted, free, 'a deleted account\'s name (its home left) is answered like a free one');
    assert.equal(JSON.parse(free).code, 200);
    const [takenShort, deletedShort, freeShort] = await replies('short');
    assert.equal(takenShort, freeShort);
    assert.equal(deletedShort, freeShort);
    assert.equal(JSON.parse(freeShort).code, 550);
    await c.quit();
    // Only the free name became an account; alice keeps her password, bob's files are nobody's.
    assert.deepEqual(t.server.users!.list(), [USER, 'newcomer']);
    const fresh = await t.connect();
    await fresh.login('newcomer', 'new-long-password');
    await fresh.quit();
    const thief = await t.connect();
    await thief.expect(`USER ${USER}`, 331);
    await thief.expect('PASS new-long-password', 530);
    await thief.login(USER, PASSWORD);
    await thief.quit();
    assert.equal(fs.readFileSync(path.join(t.root, 'bob', 'bob.txt'), 'utf8'), 'bob\'s file');
    assert.match(t.log.join('\n'), /registration of "bob" refused: a home by that name exists/);
  });
});

describe('ftp security: the log', function () {
  this.timeout(30000);

  it('client bytes reach no log line raw: ESC sequences, C1 controls and bidi overrides in user names and paths are escaped', async () => {
    const before = openKernelObjects();
    const t = await startServer();
    try {
      const red = '\x1b[31mroot\x1b[0m';
      const c = await t.connect();
      await c.expect(`USER ${red}`, 331);
      await c.expect('PASS wrong', 530); // Logged: login failed for "<name>".
      await c.login(USER, PASSWORD);
      await c.expect('TYPE I', 200);
      const names = ['\x1b]0;owned\x07title.txt', 'csi\u009b2J.txt', 'rtl\u202etxt.exe', 'back\\slash.txt'];
      for (const name of names) assert.equal((await c.upload(`STOR ${name}`, Buffer.from('x'))).code, 226); // Logged: STOR <path> completed.
      await c.quit();
      const log = t.log.join('\n');
      const raw = t.log.filter((line) => /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(line));
      assert.deepEqual(raw, [], 'log lines with raw control characters');
      assert.ok(log.includes('login failed for "\\x1b[31mroot\\x1b[0m"'), log);
      for (const escaped of ['\\x1b]0;owned\\x07title.txt', 'csi\\x9b2J.txt', 'rtl\\u202etxt.exe', 'back\\\\slash.txt']) {
        assert.ok(log.includes(`STOR /${escaped} completed`), `${escaped} in:\n${log}`);
      }
      // The files themselves have their names as sent.
      assert.deepEqual(fs.readdirSync(t.home).sort(), [...names].sort());
    } finally {
      await t.stop();
    }
    assert.deepEqual(leakedSince(before), []);
  });
});

describe('ftp security: limits', function () {
  this.timeout(30000);
  let t: TestServer | null = null;
  let before: Map<number, string>;

  beforeEach(() => {
    before = openKernelObjects();
  });

  afterEach(async () => {
    await t?.stop();
    t = null;
    assert.deepEqual(leakedSince(before), []);
  });

  it('a command line over 4 KiB gets 500 and is skipped as it arrives; the session goes on', async () => {
    t = await startServer();
    const c = await t.login();
    c.send(`NOOP ${'x'.repeat(4092)}`); // 4097 bytes: one too many.
    assert.equal((await c.reply()).code, 500);
    c.send(`MKD ${'y'.repeat(4092)}`); // Exactly 4096: a name too long for the file system, not for the line.
    assert.ok([550, 553].includes((await c.reply()).code));
    // 16 MiB without a line end, in pieces: one 500, nothing held, and the next line is a command.
    const junk = Buffer.alloc(1024 * 1024, 0x41);
    for (let i = 0; i < 16; i++) c.socket.write(junk);
    c.send('\r\nPWD');
    assert.equal((await c.reply()).code, 500);
    assert.equal((await c.reply()).code, 257);
    await c.quit();
  });

  it('max clients in total: the one over the limit gets 421 and is closed; a place freed is taken again', async () => {
    t = await startServer({ maxClients: 3 });
    const clients = [await t.connect(), await t.connect(), await t.connect()];
    for (const c of clients) assert.equal(c.greeting.code, 220);
    const over = await t.connect();
    assert.equal(over.greeting.code, 421);
    assert.match(over.greeting.text, /Too many connections/);
    await over.closed;
    await clients[0].quit();
    await clients[0].closed;
    const late = await t.connect();
    assert.equal(late.greeting.code, 220);
    assert.equal(t.server.stats.refused, 1);
    assert.equal(t.server.stats.connections, 3);
  });

  it('max clients per address: a fourth from 127.0.0.1 is refused while 127.0.0.2 is served', async () => {
    t = await startServer({ maxPerIp: 3 });
    const mine = [await t.connect(), await t.connect(), await t.connect()];
    const over = await t.connect();
    assert.equal(over.greeting.code, 421);
    assert.match(over.greeting.text, /from your address/);
    await over.closed;
    const elsewhere = await t.connect({ localAddress: '127.0.0.2' });
    assert.equal(elsewhere.greeting.code, 220);
    await elsewhere.login(USER, PASSWORD);
    assert.equal(mine.length, 3);
  });

  it('behind one address, logged-in users count against their own limit (maxPerUser), not the address\'s (maxPerIp)', async () => {
    t = await startServer({ maxPerIp: 2, maxPerUser: 2 });
    t.server.users!.add('bob', 'bob-password');
    t.server.users!.add('carol', 'carol-password');
    const sessions: FtpClient[] = [];
    for (const [user, password] of [[USER, PASSWORD], ['bob', 'bob-password'], ['carol', 'carol-password'], [USER, PASSWORD]]) {
      const c = await t.connect();
      assert.equal(c.greeting.code, 220, `${user}'s connection was admitted`);
      await c.login(user, password);
      sessions.push(c);
    }
    // Two not logged in fill the address's places; a third is refused.
    const waiting = [await t.connect(), await t.connect()];
    assert.deepEqual(waiting.map((c) => c.greeting.code), [220, 220]);
    const over = await t.connect();
    assert.equal(over.greeting.code, 421);
    await over.closed;
    // A third session of alice is over her own limit.
    await waiting[0].expect(`USER ${USER}`, 331);
    const third = await waiting[0].command(`PASS ${PASSWORD}`);
    assert.equal(third.code, 421);
    assert.match(third.text, /for this user/);
    for (const c of sessions) await c.expect('NOOP', 200);
  });

  /** The server's session for a client (found by its port): to wait for the server's side of something. */
  function sessionOf(c: FtpClient): { data: { isConnected: boolean } | null } {
    const sessions = (t!.server as unknown as { admitted: Map<{ peerPort: number; data: { isConnected: boolean } | null }, string> }).admitted;
    return [...sessions.keys()].find((s) => s.peerPort === c.socket.localPort)!;
  }

  /** Resolves once `predicate` holds (checked every event-loop turn). */
  function until(predicate: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => (predicate() ? resolve() : setImmediate(check));
      check();
    });
  }

  /** A session that logs in, then idles until the server closes it: by then `ms` have passed for every session tracked before it. */
  async function idleBystander(): Promise<void> {
    const bystander = await t!.login();
    assert.equal((await bystander.reply()).code, 421);
    await bystander.closed;
  }

  it('an idle control connection times out with 421; only a complete command restarts the timer, not a byte that never makes a line', async () => {
    t = await startServer({ idleTimeoutMs: 300 });
    const idle = await t.login();
    const reply = await idle.reply(); // Nothing sent: the server speaks first.
    assert.equal(reply.code, 421);
    assert.match(reply.text, /No command for 0\.3 s/);
    await idle.closed;
    // One byte every third of the period, never a line end: the session is closed all the same.
    const trickle = await t.login();
    const bytes = Buffer.from('NOOP and so on, never ending the line');
    let sent = 0;
    const ticker = setInterval(() => trickle.socket.write(bytes.subarray(sent, ++sent)), 100);
    try {
      assert.equal((await trickle.reply()).code, 421);
      await trickle.closed;
    } finally {
      clearInterval(ticker);
    }
    assert.ok(sent > 0);
    assert.ok(t.log.some((line) => /idle timeout: closing/.test(line)));
  });

  it('the login time limit closes a session that is not logged in, however busy it keeps itself; a logged-in one stays', async () => {
    // 2 s: the member's login (a scrypt, slow on a loaded machine) must fit in it; the loiterer is closed at its end.
    t = await startServer({ loginTimeoutMs: 2000, idleTimeoutMs: 60000 });
    const member = await t.login();
    const loiterer = await t.connect();
    const ticker = setInterval(() => loiterer.send('NOOP'), 50); // Complete commands, answered, but no login.
    try {
      let reply = await loiterer.reply();
      while (reply.code === 200) reply = await loiterer.reply();
      assert.equal(reply.code, 421);
      assert.match(reply.text, /Not logged in within 2 s/);
      await loiterer.closed;
    } finally {
      clearInterval(ticker);
    }
    // The loiterer came after the member logged in: its limit running out means the member's would have too.
    await member.expect('NOOP', 200);
    await member.quit();
  });

  it('the idle timer pauses while a transfer runs, and while a data connection waits for its command; it starts over after', async () => {
    // 1 s: long enough for this client to send its next command on a loaded machine.
    t = await startServer({ idleTimeoutMs: 1000, dataTimeoutMs: 60000 });
    fs.writeFileSync(path.join(t.home, 'big.bin'), Buffer.alloc(32 * 1024 * 1024, 3));
    const busy = await t.login();
    await busy.expect('TYPE I', 200);
    const data = await busy.passive();
    data.pause(); // The transfer stays open until we read.
    await busy.expect('RETR big.bin', 150);
    await idleBystander(); // Idle past the period, tracked after busy's last command.
    await busy.expect('NOOP', 200); // Still here: paused during the transfer.
    const received = readAll(data);
    data.resume();
    const [bytes] = await Promise.all([received, (async () => assert.equal((await busy.reply()).code, 226))()]);
    assert.equal(bytes.length, 32 * 1024 * 1024);
    // A data connection made, its transfer command not sent yet: paused too (as pyftpdlib does).
    const reply = await busy.expect('EPSV', 229);
    const waiting = await connectTo(Number(/\|\|\|(\d+)\|/.exec(reply.text)![1]));
    await until(() => sessionOf(busy).data?.isConnected === true);
    await idleBystander();
    await busy.expect('NOOP', 200);
    // The data connection goes (ABOR): the idle period starts over, and ends the session.
    await busy.expect('ABOR', 225);
    assert.equal((await busy.reply()).code, 421);
    await busy.closed;
    waiting.destroy();
  });

  it('lingering data connections are bounded per session: 300 LISTs from a client that never closes its data side leave at most 2 open', async () => {
    t = await startServer({ dataTimeoutMs: 60000 });
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(t.home, `f${i}.txt`), 'x');
    const c = await t.login();
    const sockets = () => openKernelObjects().size;
    const baseline = sockets();
    const kept: net.Socket[] = [];
    let mostLingering = 0;
    for (let i = 0; i < 300; i++) {
      const reply = await c.expect('EPSV', 229);
      const data = await connectTo(Number(/\|\|\|(\d+)\|/.exec(reply.text)![1]));
      kept.push(data); // Read to the end, never ended nor closed: the server's side is left to linger.
      const ended = new Promise((resolve) => data.once('end', resolve));
      data.resume();
      await c.expect('LIST', 150);
      assert.equal((await c.reply()).code, 226);
      await ended;
      mostLingering = Math.max(mostLingering, t.server.stats.lingeringDataConnections);
    }
    assert.ok(mostLingering <= 2, `the server counted ${mostLingering} lingering data connections`);
    // The kernel's count: our 300 client sockets, and on the server's side the bound, not 300.
    const opened = sockets() - baseline;
    assert.ok(opened <= 300 + 2 + 1, `${opened} sockets opened by 300 LISTs`);
    await c.expect('NOOP', 200);
    for (const data of kept) data.destroy();
    await c.quit();
  });

  it('data connections closing after their transfer count against maxClients, until they are closed', async () => {
    t = await startServer({ maxClients: 2 });
    const c = await t.login();
    const reply = await c.expect('EPSV', 229);
    const data = await connectTo(Number(/\|\|\|(\d+)\|/.exec(reply.text)![1]));
    const ended = new Promise((resolve) => data.once('end', resolve));
    data.resume();
    await c.expect('LIST', 150);
    assert.equal((await c.reply()).code, 226);
    await ended; // Our side stays open: the server's lingers, waiting for it.
    assert.equal(t.server.stats.lingeringDataConnections, 1);
    const over = await t.connect();
    assert.equal(over.greeting.code, 421, 'one session and one closing data connection fill 2 places');
    await over.closed;
    data.end(); // The client's end: the server's side closes at once.
    await until(() => t!.server.stats.lingeringDataConnections === 0);
    const admitted = await t.connect();
    assert.equal(admitted.greeting.code, 220);
    data.destroy();
  });

  it('an idle data connection times out: a client that stops reading gets 426, the session goes on', async () => {
    t = await startServer({ dataTimeoutMs: 500 });
    fs.writeFileSync(path.join(t.home, 'big.bin'), Buffer.alloc(64 * 1024 * 1024));
    const c = await t.login();
    await c.expect('TYPE I', 200);
    const data = await c.passive();
    data.pause(); // Never reads: the kernel's buffers fill, then no progress.
    await c.expect('RETR big.bin', 150);
    const reply = await c.reply();
    assert.equal(reply.code, 426);
    assert.match(reply.text, /ETIMEDOUT/);
    data.destroy();
    await c.expect('NOOP', 200);
    await c.quit();
  });

  it('a passive port refuses a data connection from another address, and takes the control connection\'s peer', async () => {
    t = await startServer();
    fs.writeFileSync(path.join(t.home, 'f.txt'), 'for alice only');
    const c = await t.login();
    const reply = await c.expect('EPSV', 229);
    const port = Number(/\|\|\|(\d+)\|/.exec(reply.text)![1]);
    const stranger = await connectTo(port, { localAddress: '127.0.0.2' });
    const strangerGot = readAll(stranger).catch(() => Buffer.alloc(0));
    await c.expect('RETR f.txt', 150);
    assert.equal((await strangerGot).length, 0, 'the stranger is closed without a byte');
    const mine = await connectTo(port);
    assert.equal((await readAll(mine)).toString(), 'for alice only');
    assert.equal((await c.reply()).code, 226);
    assert.equal(t.server.stats.foreignDataConnections, 1);
    await c.quit();
  });

  it('PORT and EPRT go only to the client\'s own address, never to a privileged port (no FTP bounce)', async () => {
    t = await startServer();
    const c = await t.login();
    const victim = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => victim.listen(0, '127.0.0.2', resolve));
    const port = (victim.address() as net.AddressInfo).port;
    let bounced = false;
    victim.on('connection', () => {
      bounced = true;
    });
    for (const command of [`PORT 127,0,0,2,${port >> 8},${port & 255}`, `EPRT |1|127.0.0.2|${port}|`, 'PORT 10,0,0,1,0,25',
      'PORT 127,0,0,1,0,25', 'EPRT |1|127.0.0.1|22|', 'PORT 127,0,0,1,300,1', 'EPRT |1|999.0.0.1|2000|', 'EPRT |3|x|1|']) {
      await c.expect(command, 501);
    }
    await c.expect('STOR x', 425); // No data channel was set up by any of them.
    await c.quit();
    victim.close();
    assert.equal(bounced, false);
  });
});

describe('ftp security: a client that does not read its replies', function () {
  this.timeout(30000);

  it('is not read any further once its replies back up: the reply queue stays near 64 KiB, and the held commands run when it reads', async () => {
    const before = openKernelObjects();
    const t = await startServer();
    try {
      for (let i = 0; i < 2000; i++) fs.writeFileSync(path.join(t.home, `file-${String(i).padStart(4, '0')}.txt`), '');
      const c = await t.login();
      c.socket.pause(); // Reads nothing for now.
      // Each STAT / is a ~160 KB reply: 32 MB in all, far more than the kernel's socket buffers hold.
      const count = 200;
      c.send(Buffer.from('STAT /\r\n'.repeat(count)));
      const session = [...(t.server as unknown as { admitted: Map<{ control: { isPaused: boolean; peakWritableLength: number } }, string> }).admitted.keys()][0];
      await new Promise<void>((resolve) => {
        const check = () => (session.control.isPaused ? resolve() : setImmediate(check));
        check();
      });
      const oneReply = 2002 * 80;
      assert.ok(session.control.peakWritableLength < 64 * 1024 + 2 * oneReply, `the server queued ${session.control.peakWritableLength} bytes of replies`);
      c.socket.resume();
      for (let i = 0; i < count; i++) assert.equal((await c.reply()).lines.length, 2002);
      await c.expect('NOOP', 200);
      await c.quit();
    } finally {
      await t.stop();
    }
    assert.deepEqual(leakedSince(before), []);
  });
});

describe('ftp security: a client that resets before its session is built', function () {
  this.timeout(20_000);

  it('shutdown() and close() in the turn its session failed skip the connection that has none', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-ftp-'));
    fs.mkdirSync(path.join(base, 'root'));
    const reactor = new Reactor(createSelector(process.platform === 'linux' ? 'epoll' : 'poll'));
    const log: string[] = [];
    let stopped: (() => void) | null = null;
    const done = new Promise<void>((resolve) => { stopped = resolve; });
    let thrown: unknown = null;
    const server = new FtpServer({
      root: path.join(base, 'root'), users: makeUsersFile(base), port: 0, reactor,
      log: (line) => {
        log.push(line);
        // The Listener logs the failed setup with the connection still tracked and no session on it:
        // the application stops the server right then, in the same turn.
        if (!line.includes('the connection handler threw') || stopped === null) return;
        const resolve = stopped;
        stopped = null;
        try {
          server.shutdown(0, resolve);
          server.close();
        } catch (err) {
          thrown = err;
          resolve();
        }
      },
    });
    const { port } = server.listen();
    // Connected (the handshake is done: a blocking connect), then reset while it waits in the
    // backlog, all before the reactor's next turn: the server accepts a socket whose peer is gone,
    // so FtpSession's getpeername fails with ENOTCONN.
    const fd = binding.socket(constants.AF_INET, constants.SOCK_STREAM);
    binding.setNonBlocking(fd, false);
    assert.equal(binding.connect(fd, '127.0.0.1', port), true);
    binding.setsockopt(fd, constants.SOL_SOCKET, constants.SO_LINGER, { onoff: true, linger: 0 });
    binding.close(fd);
    reactor.attach();
    try {
      await done;
      assert.equal(thrown, null, `shutdown()/close() threw: ${String(thrown)}`);
      assert.ok(log.some((line) => /the connection handler threw: .*ENOTCONN/.test(line)), log.join('\n'));
    } finally {
      reactor.close();
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});
