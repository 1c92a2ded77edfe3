/**
 * The FTP server's parts on their own: the wire format (command lines, replies, PORT/EPRT), virtual
 * path resolution, the login guard on a fake clock, and the scrypt user store.
 */
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LoginGuard } from '../lib/ftp/login-guard';
import { fromDisk, toDisk } from '../lib/ftp/names';
import { Home, resolveVirtual } from '../lib/ftp/paths';
import { formatReply, normalizeAddress, parseCommand, parseEprtArgument, parsePortArgument, quotePath, stripTelnet } from '../lib/ftp/protocol';
import { UserStore } from '../lib/ftp/users';

describe('ftp units: the wire format', () => {
  it('parses verb and argument (verb in any case, the argument as sent), refuses what is not a command', () => {
    assert.deepEqual(parseCommand(Buffer.from('retr  two spaces.txt ')), { ok: true, command: { verb: 'RETR', arg: ' two spaces.txt ' } });
    assert.deepEqual(parseCommand(Buffer.from('NOOP')), { ok: true, command: { verb: 'NOOP', arg: '' } });
    assert.deepEqual(parseCommand(Buffer.from('MKD über')), { ok: true, command: { verb: 'MKD', arg: 'über' } });
    for (const bad of ['', ' NOOP', 'NO', 'NOOPS x', 'N00P', '中文 x']) assert.equal((parseCommand(Buffer.from(bad)) as { code: number }).code, 500, bad);
    for (const bad of ['RETR a\0b', 'RETR a\rb']) assert.equal((parseCommand(Buffer.from(bad)) as { code: number }).code, 501, bad);
    assert.equal((parseCommand(Buffer.from([0x52, 0x45, 0x54, 0x52, 0x20, 0xc3, 0x28])) as { code: number }).code, 501, 'not UTF-8');
  });

  it('strips telnet sequences (IAC IP IAC DM before ABOR; IAC IAC is a 0xFF byte; option negotiation takes three bytes)', () => {
    assert.deepEqual(parseCommand(Buffer.from([0xff, 0xf4, 0xff, 0xf2, ...Buffer.from('ABOR')])), { ok: true, command: { verb: 'ABOR', arg: '' } });
    assert.deepEqual([...stripTelnet(Buffer.from([0x41, 0xff, 0xff, 0x42]))], [0x41, 0xff, 0x42]);
    assert.deepEqual([...stripTelnet(Buffer.from([0x41, 0xff, 0xfb, 0x01, 0x42]))], [0x41, 0x42]);
    assert.deepEqual([...stripTelnet(Buffer.from([0x41, 0xff]))], [0x41]);
  });

  it('strips what RFC 854 says is not data: subnegotiation, an IAC before a non-command, and command bytes left before the verb without their IAC', () => {
    const abor = { ok: true, command: { verb: 'ABOR', arg: '' } };
    // pyftpdlib's test_oob_abor: IP and IAC each sent as urgent data, then "abor": the stream holds F4 FF "abor".
    assert.deepEqual(parseCommand(Buffer.from([0xf4, 0xff, ...Buffer.from('abor')])), abor);
    assert.deepEqual(parseCommand(Buffer.from([0xf4, 0xf2, ...Buffer.from('ABOR')])), abor, 'IP DM without their IACs');
    assert.deepEqual(parseCommand(Buffer.from([0xff, 0xfa, 0x18, 0x01, 0xff, 0xf0, ...Buffer.from('NOOP')])), { ok: true, command: { verb: 'NOOP', arg: '' } });
    assert.deepEqual([...stripTelnet(Buffer.from([0x41, 0xff, 0x42]))], [0x41, 0x42], 'an IAC before a byte that is no command goes alone');
    // After the verb, bytes >= 0xF0 are data (4-byte UTF-8 sequences start there): an emoji in a name survives.
    assert.deepEqual(parseCommand(Buffer.from('MKD \u{1F600}')), { ok: true, command: { verb: 'MKD', arg: '\u{1F600}' } });
    assert.deepEqual(parseCommand(Buffer.from([0xff, 0xf4, ...Buffer.from('MKD \u{1F600}')])), { ok: true, command: { verb: 'MKD', arg: '\u{1F600}' } });
  });

  it('formats one-line and multi-line replies; a middle line starting with a digit is indented; CR/LF never leak into a line', () => {
    assert.equal(formatReply(200, 'ok'), '200 ok\r\n');
    assert.equal(formatReply(211, ['Features:', ' SIZE', '123 looks like a code', 'End']), '211-Features:\r\n SIZE\r\n 123 looks like a code\r\n211 End\r\n');
    assert.equal(formatReply(550, 'a\rb'), '550 a b\r\n');
    assert.equal(quotePath('/say "hi"'), '"/say ""hi"""');
  });

  it('PORT and EPRT arguments: well-formed ones parse, the rest are null', () => {
    assert.deepEqual(parsePortArgument('127,0,0,1,4,1'), { host: '127.0.0.1', port: 1025 });
    for (const bad of ['127,0,0,1,4', '127,0,0,1,4,256', 'a,b,c,d,e,f', '', '1,2,3,4,5,6,7']) assert.equal(parsePortArgument(bad), null, bad);
    assert.deepEqual(parseEprtArgument('|1|10.0.0.1|2000|'), { family: 1, host: '10.0.0.1', port: 2000 });
    assert.deepEqual(parseEprtArgument('!2!::1!21!'), { family: 2, host: '::1', port: 21 });
    for (const bad of ['|1|::1|2000|', '|2|10.0.0.1|2000|', '|1|10.0.0.1|0|', '|1|10.0.0.1|70000|', '|3|x|1|', '1|2|3|4', '|1|300.0.0.1|5|']) {
      assert.equal(parseEprtArgument(bad), null, bad);
    }
    assert.equal(normalizeAddress('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(normalizeAddress('0:0:0:0:0:0:0:1'), '::1');
  });
});

describe('ftp units: names that are not UTF-8 (names.ts)', () => {
  it('any bytes map to a UTF-8 string and back to the same bytes; UTF-8 names outside U+EF80-U+EFFF are left as they are (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 24 }), (array) => {
      const bytes = Buffer.from(array);
      const shown = fromDisk(bytes);
      assert.equal(Buffer.from(shown, 'utf8').toString('utf8'), shown, 'well-formed text (no lone surrogate): it goes on the wire as UTF-8');
      const back = toDisk(shown);
      assert.deepEqual(Buffer.isBuffer(back) ? back : Buffer.from(back, 'utf8'), bytes);
    }), { numRuns: 5000 });
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 12 }), (text) => {
      if (/[\uef80-\uefff]/.test(text)) return;
      assert.equal(fromDisk(Buffer.from(text, 'utf8')), text);
      assert.equal(toDisk(text), text, 'nothing to escape: the same string');
    }), { numRuns: 2000 });
    assert.equal(fromDisk(Buffer.from([0x66, 0xff])), 'f\uefff');
    assert.equal(fromDisk(Buffer.from([0x63, 0x61, 0x66, 0xe9])), 'caf\uefe9');
    assert.equal(fromDisk(Buffer.from('p\uef80', 'utf8')), 'p\uefee\uefbe\uef80', 'a real U+EF80 is escaped byte by byte');
    assert.deepEqual(toDisk('\uefc3\uefa9'), Buffer.from('é'), 'escaped bytes that make UTF-8 name the same file as the character');
  });
});

describe('ftp units: virtual paths', () => {
  it('no argument leaves the tree: any mix of segments, "..", "." and slashes resolves to a normalized path under / (property)', () => {
    const segment = fc.oneof(fc.constantFrom('..', '.', '', 'a', 'b c', '...', '~'), fc.string({ maxLength: 6 }).filter((s) => !/[\0\r\n/]/.test(s)));
    fc.assert(fc.property(fc.array(segment, { maxLength: 6 }), fc.array(segment, { maxLength: 12 }), fc.boolean(), (cwdParts, parts, absolute) => {
      const cwd = resolveVirtual('/', cwdParts.join('/'));
      const resolved = resolveVirtual(cwd, (absolute ? '/' : '') + parts.join('/'));
      assert.ok(resolved.startsWith('/'));
      assert.ok(!resolved.split('/').includes('..'), resolved);
      assert.equal(path.posix.normalize(resolved), resolved);
      assert.ok(path.join('/home/alice', resolved).startsWith('/home/alice'));
    }), { numRuns: 2000 });
  });

  it('refuses NUL, CR and LF in names; Home.contains does not confuse a sibling with the same prefix', () => {
    for (const name of ['a\0b', 'a\rb', 'a\nb']) assert.throws(() => resolveVirtual('/', name), { code: 501 });
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-ftp-home-'));
    try {
      fs.mkdirSync(path.join(base, 'alice'));
      fs.mkdirSync(path.join(base, 'alice2'));
      const home = new Home(path.join(base, 'alice'));
      assert.ok(home.contains(path.join(home.real, 'x')));
      assert.ok(home.contains(home.real));
      assert.ok(!home.contains(path.join(base, 'alice2', 'x')));
      assert.ok(!home.contains(base));
    } finally {
      fs.rmSync(base, { recursive: true });
    }
  });
});

describe('ftp units: the login guard', () => {
  it('delays grow with a pair\'s failures, maxFailures locks that (address, user) for lockoutMs, then it is free again', () => {
    let now = 0;
    const guard = new LoginGuard({ delayMs: 100, maxFailures: 3, lockoutMs: 1000 }, () => now);
    assert.deepEqual(guard.failed('a', 'alice'), { delayMs: 100, locked: null });
    assert.deepEqual(guard.failed('a', 'alice'), { delayMs: 200, locked: null });
    assert.equal(guard.lockedFor('b', 'alice'), 0);
    assert.deepEqual(guard.failed('a', 'alice'), { delayMs: 300, locked: 'pair' });
    assert.equal(guard.lockedFor('a', 'alice'), 1000);
    assert.equal(guard.lockedFor('a', 'bob'), 0, 'another user behind the same address is not locked');
    assert.equal(guard.lockedFor('a'), 0, 'nor is the address');
    guard.succeeded('a', 'alice'); // A right password while locked changes nothing.
    now = 999;
    assert.equal(guard.lockedFor('a', 'alice'), 1);
    now = 1000;
    assert.equal(guard.lockedFor('a', 'alice'), 0);
    assert.deepEqual(guard.failed('a', 'alice'), { delayMs: 100, locked: null }, 'counting starts over');
    guard.succeeded('a', 'alice');
    assert.deepEqual(guard.failed('a', 'alice'), { delayMs: 100, locked: null }, 'a success forgets its own failures');
  });

  it('another account\'s success clears nothing: 12 guesses with a success between each lock the pair at maxFailures', () => {
    const guard = new LoginGuard({ delayMs: 1, maxFailures: 5 }, () => 0);
    const locked: (string | null)[] = [];
    for (let i = 0; i < 12 && guard.lockedFor('a', 'alice') === 0; i++) {
      locked.push(guard.failed('a', 'alice').locked);
      guard.succeeded('a', i % 2 === 0 ? 'anonymous' : 'mallory');
    }
    assert.deepEqual(locked, [null, null, null, null, 'pair']);
  });

  it('per user across addresses (maxUserFailures) and per address across users (maxAddressFailures)', () => {
    const guard = new LoginGuard({ maxFailures: 2, maxUserFailures: 4, maxAddressFailures: 6 }, () => 0);
    assert.equal(guard.maxUserFailures, 4);
    guard.failed('a', 'alice');
    guard.failed('b', 'alice');
    guard.failed('c', 'alice');
    assert.deepEqual(guard.lockout('d', 'alice'), null);
    assert.equal(guard.failed('d', 'alice').locked, 'user');
    assert.equal(guard.lockout('e', 'alice')?.by, 'user', 'locked from everywhere, a new address included');
    assert.equal(guard.lockedFor('e', 'bob'), 0);
    for (let i = 0; i < 5; i++) assert.equal(guard.failed('f', `name${i}`).locked, null);
    assert.equal(guard.failed('f', 'name5').locked, 'address');
    assert.ok(guard.lockedFor('f') > 0, 'the address is refused at connection time');
    assert.equal(guard.lockout('f', 'carol')?.by, 'address');
    const defaults = new LoginGuard({ maxFailures: 3 }, () => 0);
    assert.deepEqual([defaults.maxUserFailures, defaults.maxAddressFailures], [12, 30]);
  });

  it('registrations are limited per address and hour; the tables stay bounded under many addresses', () => {
    let now = 0;
    const guard = new LoginGuard({ registrationsPerHour: 2, maxEntries: 100 }, () => now);
    assert.ok(guard.mayRegister('a'));
    assert.ok(guard.mayRegister('a'));
    assert.ok(!guard.mayRegister('a'));
    assert.ok(guard.mayRegister('b'));
    now = 3600 * 1000;
    assert.ok(guard.mayRegister('a'));
    for (let i = 0; i < 10000; i++) {
      guard.failed(`10.0.${i >> 8}.${i & 255}`, `user${i}`);
      guard.mayRegister(`10.1.${i >> 8}.${i & 255}`);
    }
    const tables = guard as unknown as Record<'pairs' | 'names' | 'addresses', { table: Map<string, unknown> }> & { registrations: Map<string, unknown> };
    for (const kind of ['pairs', 'names', 'addresses'] as const) assert.ok(tables[kind].table.size <= 100, kind);
    assert.ok(tables.registrations.size <= 100);
  });
});

describe('ftp units: the user store', function () {
  this.timeout(20000);
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-ftp-users-'));
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const verify = (store: UserStore, name: string, password: string, mode: 'sync' | 'async') =>
    new Promise<boolean>((resolve) => store.verify(name, password, mode, resolve));

  it('verifies the right password only, synchronously or on libuv\'s pool, and an unknown user like a wrong password', async () => {
    const store = new UserStore(path.join(dir, 'users.json'));
    store.add('alice', 'alice-password');
    for (const mode of ['sync', 'async'] as const) {
      assert.equal(await verify(store, 'alice', 'alice-password', mode), true);
      assert.equal(await verify(store, 'alice', 'alice-passwore', mode), false);
      assert.equal(await verify(store, 'nobody', 'alice-password', mode), false);
      assert.equal(await verify(store, 'alice', '', mode), false);
    }
  });

  it('sees changes made by another process (the file replaced), and forgets a remembered login when its record changes', async () => {
    const file = path.join(dir, 'users.json');
    const server = new UserStore(file);
    const admin = new UserStore(file);
    admin.add('alice', 'first-password');
    assert.equal(await verify(server, 'alice', 'first-password', 'sync'), true); // Remembered now.
    admin.remove('alice');
    assert.equal(await verify(server, 'alice', 'first-password', 'sync'), false);
    admin.add('alice', 'second-password');
    assert.equal(await verify(server, 'alice', 'first-password', 'sync'), false);
    assert.equal(await verify(server, 'alice', 'second-password', 'async'), true);
    assert.deepEqual(server.list(), ['alice']);
  });

  it('the same login arriving many times at once costs one scrypt on the pool (CPU time of 1, not 100)', async () => {
    const store = new UserStore(path.join(dir, 'users.json'), 0); // No remembered logins: only joining can save work.
    store.add('alice', 'alice-password');
    const one = process.cpuUsage();
    assert.equal(await verify(store, 'alice', 'alice-password', 'async'), true);
    const single = process.cpuUsage(one);
    const start = process.cpuUsage();
    const results = await Promise.all(Array.from({ length: 100 }, () => verify(store, 'alice', 'alice-password', 'async')));
    const used = process.cpuUsage(start);
    assert.deepEqual(new Set(results), new Set([true]));
    const ms = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
    // 100 separate scrypts would take 100 times one; joined they take about one (a wide margin for a busy machine).
    assert.ok(ms(used) < 20 * Math.max(ms(single), 10), `100 checks used ${ms(used)} ms of CPU; one used ${ms(single)} ms`);
  });

  it('addAsync hashes on the pool and adds; a bad or taken name, or one taken while it hashed, is an error and changes nothing', async () => {
    const file = path.join(dir, 'users.json');
    const store = new UserStore(file);
    const addAsync = (name: string, password: string) =>
      new Promise<Error | null>((resolve) => store.addAsync(name, password, resolve));
    assert.equal(await addAsync('alice', 'alice-password'), null);
    assert.equal(await verify(store, 'alice', 'alice-password', 'sync'), true);
    assert.match(String(await addAsync('alice', 'other-password')), /user "alice" exists/);
    assert.match(String(await addAsync('../bob', 'bob-password')), /a user name is 1 to 32/);
    assert.deepEqual(store.list(), ['alice']);
    // Taken by another process while the hash runs (the callback cannot run before this returns).
    const racing = addAsync('carol', 'async-password');
    new UserStore(file).add('carol', 'sync-password');
    assert.match(String(await racing), /user "carol" exists/);
    assert.equal(await verify(store, 'carol', 'sync-password', 'sync'), true, 'the other process\'s record stays');
  });

  it('a file that is not a users file is a clear error', () => {
    const file = path.join(dir, 'users.json');
    fs.writeFileSync(file, '{"users": []');
    assert.throws(() => new UserStore(file), /is not a users file/);
    fs.writeFileSync(file, '{"version": 2, "users": {}}');
    assert.throws(() => new UserStore(file), /is not a users file/);
  });
});
