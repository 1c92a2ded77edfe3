/**
 * `iomux ftp` as a user runs it: `user add/del/list` on a users file (scrypt hashes, no plain text,
 * mode 0600, the home created), and `serve` as a child process — its listening line, accounts
 * added while it runs, a graceful SIGTERM that lets a running transfer finish, and its memory: a
 * 512 MiB upload and a 64 MiB command line without an end raise its peak RSS by little.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserStore } from '../lib/ftp/users';
import { lookUpAccount } from '../tools/privileges';
import { connectTo, FtpClient, iomux, serve, sha256 } from './ftp-fixtures';
import { skipUnless } from './skip';

/** A port below 1024 nobody listens on (only root can bind one): the --user test binds it as FTP's 21 would be. */
async function freePrivilegedPort(): Promise<number> {
  for (let port = 1023; port > 900; port--) {
    const free = await new Promise<boolean>((resolve) => {
      const probe = net.createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port from 901 to 1023');
}

function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return Number(/(\d+)\s*kB/.exec(line!)![1]) * 1024;
}

describe('iomux ftp (CLI)', function () {
  this.timeout(60000);
  let base: string;
  let users: string;
  let root: string;

  beforeEach(() => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-ftp-cli-'));
    users = path.join(base, 'users.json');
    root = path.join(base, 'root');
    fs.mkdirSync(root);
  });

  afterEach(() => {
    fs.rmSync(base, { recursive: true, force: true });
  });

  it('user add/list/del: scrypt hashes with their own salts, no plain text, mode 0600, the home created; clear errors', async () => {
    const add = await iomux(['ftp', 'user', 'add', 'alice', '--users', users, '--root', root, '--password-stdin'], 'first-password\n');
    assert.equal(add.code, 0, add.stderr);
    assert.equal(add.stdout, `added alice; home ${path.join(root, 'alice')}\n`);
    assert.equal((await iomux(['ftp', 'user', 'add', 'bob', '--users', users, '--password-stdin'], 'first-password\n')).code, 0);
    assert.equal(fs.statSync(path.join(root, 'alice')).mode & 0o777, 0o700);
    assert.equal(fs.statSync(users).mode & 0o777, 0o600);
    const text = fs.readFileSync(users, 'utf8');
    assert.ok(!text.includes('first-password'));
    const file = JSON.parse(text) as { users: Record<string, { salt: string; hash: string; N: number }> };
    assert.notEqual(file.users.alice.salt, file.users.bob.salt, 'one salt per user');
    assert.notEqual(file.users.alice.hash, file.users.bob.hash, 'same password, different hashes');
    assert.equal(file.users.alice.N, 16384);
    assert.equal((await iomux(['ftp', 'user', 'list', '--users', users])).stdout, 'alice\nbob\n');

    const duplicate = await iomux(['ftp', 'user', 'add', 'alice', '--users', users, '--password-stdin'], 'another-password\n');
    assert.equal(duplicate.code, 1);
    assert.match(duplicate.stderr, /user "alice" exists/);
    const badName = await iomux(['ftp', 'user', 'add', '../evil', '--users', users, '--password-stdin'], 'long-enough\n');
    assert.notEqual(badName.code, 0);
    assert.match(badName.stderr, /a user name is/);
    const reserved = await iomux(['ftp', 'user', 'add', 'anonymous', '--users', users, '--password-stdin'], 'long-enough\n');
    assert.match(reserved.stderr, /reserved/);
    const short = await iomux(['ftp', 'user', 'add', 'carol', '--users', users, '--password-stdin'], 'short\n');
    assert.match(short.stderr, /at least 8 characters/);
    const noTty = await iomux(['ftp', 'user', 'add', 'carol', '--users', users]);
    assert.match(noTty.stderr, /--password-stdin/);

    assert.equal((await iomux(['ftp', 'user', 'del', 'bob', '--users', users])).stdout, 'removed bob\n');
    assert.equal((await iomux(['ftp', 'user', 'list', '--users', users])).stdout, 'alice\n');
    const missing = await iomux(['ftp', 'user', 'del', 'bob', '--users', users]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no user "bob"/);
  });

  it('user passwd changes a password (the old one stops working); user del keeps the home, or removes it with --remove-home', async () => {
    const add = (name: string) => iomux(['ftp', 'user', 'add', name, '--users', users, '--root', root, '--password-stdin'], 'first-password\n');
    assert.equal((await add('alice')).code, 0);
    assert.equal((await add('bob')).code, 0);
    fs.writeFileSync(path.join(root, 'alice', 'kept.txt'), 'kept');
    fs.writeFileSync(path.join(root, 'bob', 'gone.txt'), 'gone');
    const passwd = await iomux(['ftp', 'user', 'passwd', 'alice', '--users', users, '--password-stdin'], 'second-password\n');
    assert.equal(passwd.code, 0, passwd.stderr);
    assert.equal(passwd.stdout, 'password of alice changed\n');
    const store = new UserStore(users);
    const check = (name: string, password: string) => new Promise<boolean>((resolve) => store.verify(name, password, 'sync', resolve));
    assert.equal(await check('alice', 'first-password'), false);
    assert.equal(await check('alice', 'second-password'), true);
    assert.equal(await check('bob', 'first-password'), true, 'the other accounts are untouched');
    assert.match((await iomux(['ftp', 'user', 'passwd', 'nobody', '--users', users, '--password-stdin'], 'long-enough\n')).stderr, /no user "nobody"/);
    assert.match((await iomux(['ftp', 'user', 'passwd', 'alice', '--users', path.join(base, 'typo.json'), '--password-stdin'], 'long-enough\n')).stderr,
      /no users file/);

    assert.match((await iomux(['ftp', 'user', 'del', 'bob', '--users', users, '--remove-home'])).stderr, /--remove-home needs --root/);
    assert.equal((await iomux(['ftp', 'user', 'list', '--users', users])).stdout, 'alice\nbob\n', 'a refused del removes nothing');
    assert.equal((await iomux(['ftp', 'user', 'del', 'alice', '--users', users])).stdout, 'removed alice\n');
    assert.equal(fs.readFileSync(path.join(root, 'alice', 'kept.txt'), 'utf8'), 'kept', 'the home stays by default');
    const removed = await iomux(['ftp', 'user', 'del', 'bob', '--users', users, '--remove-home', '--root', root]);
    assert.equal(removed.stdout, `removed bob; home ${path.join(root, 'bob')} removed\n`);
    assert.equal(fs.existsSync(path.join(root, 'bob')), false);
    assert.deepEqual(fs.readdirSync(root), ['alice']);
    assert.equal((await iomux(['ftp', 'user', 'list', '--users', users])).stdout, '');
  });

  it('serve: prints its address, sees accounts added while it runs, and refuses to start when nobody could log in', async () => {
    const nobody = await iomux(['ftp', 'serve', '--root', root, '--port', '0']);
    assert.notEqual(nobody.code, 0);
    assert.match(nobody.stderr, /nobody could log in/);
    // A users file named wrong is an error, not a server with no accounts.
    const typo = await iomux(['ftp', 'serve', '--root', root, '--users', path.join(base, 'usres.json'), '--port', '0']);
    assert.notEqual(typo.code, 0);
    assert.match(typo.stderr, /no users file .*usres\.json.*--create-users/);
    assert.equal(fs.existsSync(path.join(base, 'usres.json')), false);

    await iomux(['ftp', 'user', 'add', 'alice', '--users', users, '--password-stdin'], 'alice-password\n');
    const served = await serve(['--root', root, '--users', users, '--port', '0', '--login-delay', '10']);
    try {
      const c = await FtpClient.connect(served.port);
      await c.login('alice', 'alice-password');
      await c.expect('USER bob', 530); // Logged in already: no switching users mid-session.
      await c.quit();
      await iomux(['ftp', 'user', 'add', 'bob', '--users', users, '--password-stdin'], 'bob-password\n');
      const b = await FtpClient.connect(served.port);
      await b.login('bob', 'bob-password');
      assert.ok(fs.statSync(path.join(root, 'bob')).isDirectory(), 'the home is made at the first login');
      await b.quit();
      assert.match(served.output(), /\[alice\] logged in/);
      assert.ok(!served.output().includes('alice-password'));
    } finally {
      served.child.kill('SIGTERM');
    }
    assert.equal(await served.exited, 0);
  });

  it('serve --create-users starts with an empty users file (mode 0600) that SITE REGISTER and user add fill', async () => {
    const served = await serve(['--root', root, '--users', users, '--create-users', '--allow-register', '--port', '0', '--login-delay', '10']);
    try {
      assert.equal(fs.statSync(users).mode & 0o777, 0o600);
      assert.equal((await iomux(['ftp', 'user', 'list', '--users', users])).stdout, '');
      const c = await FtpClient.connect(served.port);
      await c.expect('SITE REGISTER dave long-enough-pw', 200);
      await c.login('dave', 'long-enough-pw');
      await c.quit();
    } finally {
      served.child.kill('SIGTERM');
    }
    assert.equal(await served.exited, 0);
  });

  it('--user looks the account up with id: an unknown name, or one that looks like an option, is "no such user"; root is refused', function () {
    skipUnless(this, process.platform !== 'win32', '--user is POSIX only');
    const nobody = lookUpAccount('nobody');
    assert.deepEqual(nobody, { name: 'nobody', uid: Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' })), gid: nobody.gid });
    assert.equal(nobody.gid, Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' })));
    assert.equal(lookUpAccount(String(nobody.uid)).name, 'nobody', 'a numeric uid names the account');
    for (const name of ['iomux-no-such-user', '-x', '-u']) {
      assert.throws(() => lookUpAccount(name), new Error(`--user ${name}: no such user on this system`));
    }
    assert.throws(() => lookUpAccount('root'), /--user root is root: give an unprivileged account/);
  });

  it('--user NAME: binds a privileged port as root, then runs as NAME (every thread, no root group left) and serves as NAME', async () => {
    if (process.getuid!() !== 0) {
      // Not root here (a platform condition): then --user is refused at once, with the reason.
      const refused = await iomux(['ftp', 'serve', '--root', root, '--anonymous', '--user', 'nobody', '--port', '0']);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /needs the server to start as root/);
      return;
    }
    const id = (flag: string) => Number(execFileSync('id', [flag, 'nobody'], { encoding: 'utf8' }).trim());
    const [uid, gid] = [id('-u'), id('-g')];
    assert.equal((await iomux(['ftp', 'user', 'add', 'alice', '--users', users, '--root', root, '--password-stdin'], 'alice-password\n')).code, 0);
    // Made by root; refused until the account can reach them, then served.
    const early = await iomux(['ftp', 'serve', '--root', root, '--users', users, '--user', 'nobody', '--port', '0']);
    assert.notEqual(early.code, 0);
    assert.match(early.stderr, /not accessible to nobody after dropping privileges: chown -R nobody /);
    for (const file of [base, root, path.join(root, 'alice'), users]) fs.chownSync(file, uid, gid);
    const port = await freePrivilegedPort();
    const served = await serve(['--root', root, '--users', users, '--user', 'nobody', '--port', String(port), '--login-delay', '10']);
    try {
      assert.equal(served.port, port);
      assert.match(served.output(), /running as nobody/);
      const pid = served.child.pid!;
      const tasks = fs.readdirSync(`/proc/${pid}/task`);
      assert.ok(tasks.length > 1, 'Node runs several threads');
      for (const task of tasks) {
        const status = fs.readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8');
        const field = (name: string) => /^(\w+):\s*(.*)$/m.exec(status.split('\n').find((l) => l.startsWith(`${name}:`))!)![2].trim().split(/\s+/).map(Number);
        assert.deepEqual(field('Uid'), [uid, uid, uid, uid], `thread ${task}: real, effective, saved and file-system uid`);
        assert.deepEqual(field('Gid'), [gid, gid, gid, gid], `thread ${task}: gids`);
        assert.ok(!field('Groups').includes(0), `thread ${task} kept root's group`);
      }
      const c = await FtpClient.connect(port);
      await c.login('alice', 'alice-password');
      await c.expect('TYPE I', 200);
      assert.equal((await c.upload('STOR made-by-nobody.txt', Buffer.from('x'))).code, 226);
      await c.quit();
      assert.equal(fs.statSync(path.join(root, 'alice', 'made-by-nobody.txt')).uid, uid);
    } finally {
      served.child.kill('SIGTERM');
    }
    assert.equal(await served.exited, 0);
  });

  it('SIGTERM: stops accepting, lets the running transfer finish (226), then 421 and exit 0 with stats', async () => {
    await iomux(['ftp', 'user', 'add', 'alice', '--users', users, '--root', root, '--password-stdin'], 'alice-password\n');
    const body = Buffer.alloc(48 * 1024 * 1024, 7);
    fs.writeFileSync(path.join(root, 'alice', 'big.bin'), body);
    const served = await serve(['--root', root, '--users', users, '--port', '0', '--grace', '30']);
    const c = await FtpClient.connect(served.port);
    await c.login('alice', 'alice-password');
    await c.expect('TYPE I', 200);
    const data = await c.passive();
    data.pause(); // Holds the transfer open until we read.
    await c.expect('RETR big.bin', 150);
    served.child.kill('SIGTERM');
    // Stopped accepting (the listener closes on the signal): wait for it, then read the transfer out.
    await new Promise<void>((resolve) => {
      const probe = () => {
        const socket = net.connect(served.port, '127.0.0.1');
        socket.once('error', () => resolve());
        socket.once('connect', () => {
          socket.destroy();
          setImmediate(probe);
        });
      };
      probe();
    });
    const chunks: Buffer[] = [];
    data.on('data', (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise((resolve) => data.once('end', resolve));
    data.resume();
    await ended;
    data.end();
    assert.equal(sha256(Buffer.concat(chunks)), sha256(body));
    assert.equal((await c.reply()).code, 226);
    const last = await c.reply();
    assert.equal(last.code, 421);
    assert.match(last.text, /shutting down/);
    c.socket.end();
    await c.closed;
    assert.equal(await served.exited, 0);
    const stats = JSON.parse(/^stats (\{.*\})$/m.exec(served.output())![1]) as Record<string, number>;
    assert.equal(stats.transfers, 1);
    assert.equal(stats.bytesOut, body.length);
    assert.equal(stats.connections, 0);
  });

  it('memory: a 512 MiB upload and a 64 MiB command line without an end raise the server\'s peak RSS by less than 48 MiB', async () => {
    await iomux(['ftp', 'user', 'add', 'alice', '--users', users, '--root', root, '--password-stdin'], 'alice-password\n');
    const served = await serve(['--root', root, '--users', users, '--port', '0', '--quiet']);
    try {
      const warm = await FtpClient.connect(served.port);
      await warm.login('alice', 'alice-password');
      await warm.quit();
      const baseline = statusBytes(served.child.pid!, 'VmRSS');
      const c = await FtpClient.connect(served.port);
      await c.login('alice', 'alice-password');
      await c.expect('TYPE I', 200);
      const reply = await c.expect('EPSV', 229);
      const data = await connectTo(Number(/\|\|\|(\d+)\|/.exec(reply.text)![1]));
      await c.expect('STOR big.bin', 150);
      const block = Buffer.alloc(4 * 1024 * 1024, 1);
      for (let i = 0; i < 128; i++) {
        if (!data.write(block)) await new Promise((resolve) => data.once('drain', resolve));
      }
      data.end();
      assert.equal((await c.reply()).code, 226);
      assert.equal(fs.statSync(path.join(root, 'alice', 'big.bin')).size, 512 * 1024 * 1024);
      fs.rmSync(path.join(root, 'alice', 'big.bin'));
      const junk = Buffer.alloc(1024 * 1024, 0x41);
      for (let i = 0; i < 64; i++) {
        if (!c.socket.write(junk)) await new Promise((resolve) => c.socket.once('drain', resolve));
      }
      c.send('\r\nNOOP');
      assert.equal((await c.reply()).code, 500);
      assert.equal((await c.reply()).code, 200);
      await c.quit();
      const peak = statusBytes(served.child.pid!, 'VmHWM');
      assert.ok(peak - baseline < 48 * 1024 * 1024,
        `the server's peak RSS rose by ${((peak - baseline) / 1048576).toFixed(1)} MiB (from ${(baseline / 1048576).toFixed(1)} MiB)`);
    } finally {
      served.child.kill('SIGTERM');
    }
    assert.equal(await served.exited, 0);
  });
});
