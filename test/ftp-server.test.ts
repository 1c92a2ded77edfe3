/**
 * The FTP server's commands and transfers, on real sockets, with a raw client that sees every
 * reply: the command set and its reply codes, byte-exact transfers in both types, REST and APPE,
 * active and passive data connections, and a control connection that answers ABOR, STAT and NOOP
 * while a transfer runs.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { binding } from '../lib/native';
import { connectTo, FtpClient, pattern, readAll, sha256, startServer, TestServer, USER } from './ftp-fixtures';
import { leakedSince, openKernelObjects } from './helpers';

/** Resolves once `socket` has received at least `bytes` in total, counting into `state`. */
function received(socket: net.Socket, bytes: number): Promise<number> {
  return new Promise((resolve) => {
    let total = 0;
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total >= bytes) {
        socket.off('data', onData);
        socket.pause();
        resolve(total);
      }
    };
    socket.on('data', onData);
  });
}

const mechanisms = binding.epoll_wait ? (['epoll', 'poll', 'select'] as const) : (['poll', 'select'] as const);

describe('ftp server: commands and replies', function () {
  this.timeout(30000);
  let t: TestServer;
  let before: Map<number, string>;

  beforeEach(async () => {
    before = openKernelObjects();
    t = await startServer({ dataTimeoutMs: 2000 });
  });

  afterEach(async () => {
    await t.stop();
    assert.deepEqual(leakedSince(before), []);
  });

  it('greets with 220, answers SYST, FEAT, HELP, NOOP and OPTS UTF8 before login, and refuses the rest with 530', async () => {
    const c = await t.connect();
    assert.equal(c.greeting.code, 220);
    assert.equal((await c.expect('SYST', 215)).text, 'UNIX Type: L8');
    const feat = await c.expect('FEAT', 211);
    for (const feature of ['EPRT', 'EPSV', 'MDTM', 'REST STREAM', 'SIZE', 'UTF8', 'TVFS']) assert.ok(feat.lines.includes(` ${feature}`), feature);
    assert.ok(feat.lines.some((l) => l.startsWith(' MLST type*;size*;modify*;')));
    assert.match((await c.expect('HELP', 214)).lines.join('\n'), /RETR/);
    assert.equal((await c.expect('HELP RETR', 214)).text, 'Syntax: RETR <path>');
    await c.expect('NOOP', 200);
    await c.expect('OPTS UTF8 ON', 200);
    for (const command of ['PWD', 'CWD /', 'LIST', 'RETR x', 'STOR x', 'PASV', 'EPSV', 'MKD x', 'TYPE I', 'SIZE x', 'ABOR']) {
      await c.expect(command, 530);
    }
    await c.expect('PASS nothing', 503); // No USER yet.
    await c.expect('FROB', 500);
    await c.expect('REIN', 502);
    await c.expect('AUTH TLS', 502);
    await c.expect('USER', 501); // Needs an argument.
    await c.expect('SYST now', 501); // Takes none.
    await c.quit();
  });

  it('logs in, refuses a second login, and handles directories: PWD, MKD (quotes doubled), CWD, CDUP, RMD, UTF-8 names', async () => {
    const c = await t.login();
    await c.expect('PASS again', 503);
    assert.equal((await c.expect('PWD', 257)).text, '"/" is the current directory.');
    assert.equal((await c.expect('MKD say "hi"', 257)).text, '"/say ""hi""" created.');
    assert.ok(fs.statSync(path.join(t.home, 'say "hi"')).isDirectory());
    await c.expect('MKD über 日本', 257);
    await c.expect('CWD über 日本', 250);
    assert.equal((await c.expect('XPWD', 257)).text, '"/über 日本" is the current directory.');
    await c.expect('MKD inner', 257);
    await c.expect('CWD inner', 250);
    await c.expect('CDUP', 250);
    assert.equal((await c.expect('PWD', 257)).text, '"/über 日本" is the current directory.');
    await c.expect('RMD /über 日本', 550); // Not empty.
    await c.expect('RMD inner', 250);
    await c.expect('CWD /', 250);
    await c.expect('RMD über 日本', 250);
    await c.expect('CWD nowhere', 550);
    await c.expect('MKD say "hi"', 550); // Exists.
    assert.deepEqual(fs.readdirSync(t.home), ['say "hi"']);
    await c.quit();
  });

  it('files: SIZE (TYPE I only), MDTM, MLST, DELE, RNFR/RNTO and their sequence errors', async () => {
    fs.writeFileSync(path.join(t.home, 'a.txt'), 'hello\n');
    fs.utimesSync(path.join(t.home, 'a.txt'), new Date('2024-02-03T04:05:06Z'), new Date('2024-02-03T04:05:06Z'));
    fs.mkdirSync(path.join(t.home, 'dir'));
    const c = await t.login();
    await c.expect('SIZE a.txt', 550); // TYPE A is the default: the size would depend on the conversion.
    await c.expect('TYPE I', 200);
    assert.equal((await c.expect('SIZE a.txt', 213)).text, '6');
    await c.expect('SIZE dir', 550);
    assert.equal((await c.expect('MDTM a.txt', 213)).text, '20240203040506');
    const mlst = await c.expect('MLST a.txt', 250);
    assert.equal(mlst.lines.length, 3);
    assert.match(mlst.lines[1], /^ type=file;size=6;modify=20240203040506;perm=radfw;unique=[0-9a-f]+g[0-9a-f]+; \/a\.txt$/);
    await c.expect('OPTS MLST type;size;', 200);
    assert.equal((await c.expect('MLST /dir', 250)).lines[1], ' type=dir; /dir');
    // RFC 3659 7.9: a fact list is "fact;fact;" with no spaces; unknown facts are left out, not an error.
    await c.expect('OPTS MLST bad_fact', 501);
    await c.expect('OPTS MLST type ;', 501);
    assert.equal((await c.expect('OPTS MLST fish;cakes;type;', 200)).text, 'MLST OPTS type;');
    assert.equal((await c.expect('MLST /dir', 250)).lines[1], ' type=dir; /dir', 'a refused OPTS MLST changed nothing');
    assert.equal((await c.expect('OPTS MLST', 200)).text, 'MLST OPTS ');
    assert.equal((await c.expect('MLST /dir', 250)).lines[1], '  /dir', 'no facts: two spaces before the name');
    await c.expect('RNTO b.txt', 503);
    await c.expect('RNFR missing', 550);
    await c.expect('RNFR a.txt', 350);
    await c.expect('NOOP', 200);
    await c.expect('RNTO b.txt', 503); // RNTO must come right after RNFR.
    await c.expect('RNFR a.txt', 350);
    await c.expect('RNTO dir/b.txt', 250);
    assert.equal(fs.readFileSync(path.join(t.home, 'dir', 'b.txt'), 'utf8'), 'hello\n');
    await c.expect('DELE dir', 550); // A directory: RMD.
    await c.expect('DELE dir/b.txt', 250);
    await c.expect('DELE dir/b.txt', 550);
    await c.expect('TYPE L8', 200); // "L 8" as clients send it unspaced: binary.
    await c.expect('TYPE L 7', 504);
    await c.expect('SITE HELP REGISTER', 214);
    await c.expect('SITE HELP nonsense', 501);
    await c.expect('TYPE X', 504);
    await c.expect('MODE B', 504);
    await c.expect('MODE S', 200);
    await c.expect('STRU R', 504);
    await c.expect('STRU F', 200);
    await c.expect('ALLO 100', 202);
    await c.expect('ALLO 100 R 512', 202);
    for (const bad of ['ALLO', 'ALLO x', 'ALLO -1', 'ALLO 100 R']) await c.expect(bad, 501); // RFC 959: ALLO <decimal> [R <decimal>].
    await c.quit();
  });

  it('an urgent ABOR with stray Telnet bytes before it (IP, DM, a lone IAC) is still an ABOR', async () => {
    const c = await t.login();
    c.send(Buffer.from([0xf4, 0xff, ...Buffer.from('abor\r\n')])); // pyftpdlib's test_oob_abor, as its stream holds it.
    assert.equal((await c.reply()).code, 225);
    c.send(Buffer.from([0xff, 0xf4, 0xff, 0xf2, ...Buffer.from('ABOR\r\n')])); // RFC 959's IAC IP IAC DM.
    assert.equal((await c.reply()).code, 225);
    await c.quit();
  });

  it('replies to pipelined commands in order, one reply each', async () => {
    const c = await t.login();
    c.send(Buffer.from('NOOP\r\nPWD\r\nTYPE I\r\nMKD p\r\nCWD p\r\nPWD\r\n'));
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) codes.push((await c.reply()).code);
    assert.deepEqual(codes, [200, 257, 200, 257, 250, 257]);
    await c.quit();
  });

  it('STOR and RETR 8 MiB byte-exact in binary; LIST, NLST and MLSD describe what is there', async () => {
    const body = pattern(8 * 1024 * 1024);
    const c = await t.login();
    await c.expect('TYPE I', 200);
    assert.equal((await c.upload('STOR big.bin', body)).code, 226);
    assert.equal(sha256(fs.readFileSync(path.join(t.home, 'big.bin'))), sha256(body));
    const { data, reply } = await c.download('RETR big.bin');
    assert.equal(reply.code, 226);
    assert.equal(sha256(data), sha256(body));
    fs.mkdirSync(path.join(t.home, 'sub'));
    const list = (await c.download('LIST -la')).data.toString();
    assert.match(list, /^-rw-r--r-- +1 ftp +ftp +8388608 \w{3} [ \d]\d \d\d:\d\d big\.bin\r\ndrwx.* sub\r\n$/);
    assert.equal((await c.download('NLST')).data.toString(), 'big.bin\r\nsub\r\n');
    const mlsd = (await c.download('MLSD /')).data.toString().split('\r\n');
    assert.match(mlsd[0], /^type=file;size=8388608;modify=\d{14};perm=radfw;unique=\w+; big\.bin$/);
    assert.match(mlsd[1], /^type=dir;modify=\d{14};perm=elcmdfp;unique=\w+; sub$/);
    assert.equal((await c.download('LIST big.bin')).data.toString().split('\r\n').length, 2, 'LIST of a file: its one line');
    await c.expect('EPSV', 229);
    await c.expect('MLSD big.bin', 501); // MLSD lists directories.
    await c.quit();
  });

  it('TYPE A converts line ends: CRLF to LF on STOR, LF to CRLF on RETR (also across reads)', async () => {
    const c = await t.login();
    const lines = Array.from({ length: 20000 }, (_, i) => `line ${i}`);
    assert.equal((await c.upload('STOR text.txt', Buffer.from(lines.map((l) => `${l}\r\n`).join('')))).code, 226);
    assert.equal(fs.readFileSync(path.join(t.home, 'text.txt'), 'utf8'), lines.map((l) => `${l}\n`).join(''));
    fs.writeFileSync(path.join(t.home, 'mixed.txt'), 'a\nb\r\nc\rd\n');
    assert.equal((await c.download('RETR mixed.txt')).data.toString(), 'a\r\nb\r\nc\rd\r\n');
    const { data } = await c.download('RETR text.txt');
    assert.equal(data.toString(), lines.map((l) => `${l}\r\n`).join(''));
    await c.quit();
  });

  it('names that are not UTF-8 on disk are listed escaped (byte 0xNN as U+EFNN) and that form names them back: RETR, SIZE, CWD, RNFR/RNTO, DELE, RMD', async () => {
    const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
    const home = Buffer.from(t.home);
    const onDisk = (name: Buffer) => Buffer.concat([home, Buffer.from('/'), name]);
    fs.writeFileSync(onDisk(bytes('f', [0xff], '.txt')), 'byte ff');
    fs.mkdirSync(onDisk(bytes('caf', [0xe9]))); // Latin-1 "café": E9 alone is not UTF-8.
    fs.writeFileSync(onDisk(bytes('caf', [0xe9], '/inner.txt')), 'inside');
    fs.writeFileSync(onDisk(bytes('p', [0xee, 0xbe, 0x80], '.txt')), 'a real U+EF80'); // Valid UTF-8, but in the escape range.
    fs.writeFileSync(path.join(t.home, 'plain é.txt'), 'plain');
    const c = await t.login();
    await c.expect('TYPE I', 200);
    const names = (await c.download('NLST')).data.toString('utf8').split('\r\n').filter((n) => n !== '').sort();
    assert.deepEqual(names, ['caf\uefe9', 'f\uefff.txt', 'p\uefee\uefbe\uef80.txt', 'plain é.txt'].sort());
    assert.ok(!names.some((n) => n.includes('\ufffd')), 'no name shown as U+FFFD');
    const list = (await c.download('LIST')).data.toString('utf8');
    assert.match(list, / f\uefff\.txt\r\n/);
    assert.match((await c.download('MLSD')).data.toString('utf8'), /type=dir;.* caf\uefe9\r\n/);
    assert.equal((await c.download('RETR f\uefff.txt')).data.toString(), 'byte ff');
    assert.equal((await c.download('RETR p\uefee\uefbe\uef80.txt')).data.toString(), 'a real U+EF80');
    assert.equal((await c.expect('SIZE f\uefff.txt', 213)).text, '7');
    await c.expect('CWD caf\uefe9', 250);
    assert.equal((await c.expect('PWD', 257)).text, '"/caf\uefe9" is the current directory.');
    assert.equal((await c.download('RETR inner.txt')).data.toString(), 'inside');
    await c.expect('DELE inner.txt', 250);
    await c.expect('CDUP', 250);
    await c.expect('RMD caf\uefe9', 250); // Empty now: removable, as it was not before.
    await c.expect('RNFR f\uefff.txt', 350);
    await c.expect('RNTO g\uefff.txt', 250);
    assert.equal(fs.readFileSync(onDisk(bytes('g', [0xff], '.txt')), 'utf8'), 'byte ff', 'the renamed file keeps its raw byte');
    assert.equal((await c.upload('STOR new\uef80.bin', Buffer.from('made'))).code, 226); // The client may make such names too.
    assert.equal(fs.readFileSync(onDisk(bytes('new', [0x80], '.bin')), 'utf8'), 'made');
    await c.expect('DELE g\uefff.txt', 250);
    assert.deepEqual(fs.readdirSync(t.home, { encoding: 'buffer' }).map((b) => b.toString('hex')).sort(),
      [bytes('new', [0x80], '.bin'), bytes('p', [0xee, 0xbe, 0x80], '.txt'), Buffer.from('plain é.txt')].map((b) => b.toString('hex')).sort());
    await c.quit();
  });

  it('REST then RETR resumes a download; REST then STOR resumes an upload; APPE appends; markers past the end are refused', async () => {
    const body = pattern(3 * 1024 * 1024, 7);
    fs.writeFileSync(path.join(t.home, 'f.bin'), body);
    const c = await t.login();
    await c.expect('TYPE I', 200);
    await c.expect('REST 1000000', 350);
    const tail = await c.download('RETR f.bin');
    assert.equal(tail.reply.code, 226);
    assert.equal(sha256(tail.data), sha256(body.subarray(1000000)));
    // An upload cut at 1 MB, then resumed from the size the server has.
    assert.equal((await c.upload('STOR up.bin', body.subarray(0, 1000000))).code, 226);
    const size = Number((await c.expect('SIZE up.bin', 213)).text);
    await c.expect(`REST ${size}`, 350);
    assert.equal((await c.upload('STOR up.bin', body.subarray(size))).code, 226);
    assert.equal(sha256(fs.readFileSync(path.join(t.home, 'up.bin'))), sha256(body));
    // REST + STOR truncates at the marker: what follows it is what this STOR sends.
    await c.expect('REST 10', 350);
    assert.equal((await c.upload('STOR up.bin', Buffer.from('end'))).code, 226);
    assert.deepEqual(fs.readFileSync(path.join(t.home, 'up.bin')), Buffer.concat([body.subarray(0, 10), Buffer.from('end')]));
    assert.equal((await c.upload('APPE up.bin', Buffer.from('+more'))).code, 226);
    assert.equal(fs.readFileSync(path.join(t.home, 'up.bin')).subarray(10).toString(), 'end+more');
    await c.expect('EPSV', 229);
    await c.expect('REST 999999999', 350);
    await c.expect('RETR f.bin', 554);
    await c.expect('REST -1', 501);
    await c.expect('EPSV', 229);
    await c.expect('REST 12', 350);
    await c.expect('APPE up.bin', 501);
    await c.expect('TYPE A', 200);
    await c.expect('EPSV', 229);
    await c.expect('REST 12', 350);
    await c.expect('RETR f.bin', 504); // Resuming needs TYPE I.
    await c.quit();
  });

  it('REST then STOR of a missing name: 550 and nothing is created; the marker is used up, so the next STOR starts at 0', async () => {
    const c = await t.login();
    await c.expect('TYPE I', 200);
    await c.expect('REST 10', 350);
    await c.expect('EPSV', 229);
    await c.expect('STOR missing.bin', 550);
    assert.equal(fs.existsSync(path.join(t.home, 'missing.bin')), false, 'REST + STOR of a missing name created it');
    await c.expect('REST 10', 350);
    await c.expect('EPSV', 229);
    await c.expect('STOR sub/missing.bin', 550); // No such directory either.
    assert.equal((await c.upload('STOR missing.bin', Buffer.from('from zero'))).code, 226);
    assert.equal(fs.readFileSync(path.join(t.home, 'missing.bin'), 'utf8'), 'from zero');
    await c.quit();
  });

  it('while a RETR waits for a slow client, NOOP and STAT are answered at once, other commands wait, and ABOR ends it with 426 then 226', async () => {
    fs.writeFileSync(path.join(t.home, 'huge.bin'), Buffer.alloc(64 * 1024 * 1024, 1));
    const c = await t.login();
    await c.expect('TYPE I', 200);
    const data = await c.passive();
    await c.expect('RETR huge.bin', 150);
    await received(data, 1); // Flowing; then the client stops reading: the server's queue fills.
    await c.expect('NOOP', 200);
    const status = await c.expect('STAT', 213);
    assert.match(status.text, /^Status: RETR \/huge\.bin: \d+ bytes so far\.$/);
    c.send('PWD'); // Waits for the transfer to end.
    const dataClosed = new Promise((resolve) => data.once('close', resolve));
    c.send('ABOR');
    assert.equal((await c.reply()).code, 426);
    assert.equal((await c.reply()).code, 226);
    assert.equal((await c.reply()).code, 257, 'the held PWD runs after the transfer');
    data.destroy();
    await dataClosed;
    await c.expect('NOOP', 200);
    await c.expect('ABOR', 225); // Nothing left to abort.
    await c.quit();
  });

  it('ABOR during a STOR keeps what arrived; QUIT during a transfer is answered after its 226', async () => {
    const c = await t.login();
    await c.expect('TYPE I', 200);
    const data = await c.passive();
    await c.expect('STOR part.bin', 150);
    const stored = t.nextTransfer((r) => r.command === 'STOR');
    data.write(Buffer.alloc(100000, 2));
    await new Promise<void>((resolve) => {
      const check = () => (fs.statSync(path.join(t.home, 'part.bin')).size === 100000 ? resolve() : setImmediate(check));
      check();
    });
    c.send('ABOR');
    assert.equal((await c.reply()).code, 426);
    assert.equal((await c.reply()).code, 226);
    assert.equal((await stored).bytes, 100000);
    assert.equal(fs.statSync(path.join(t.home, 'part.bin')).size, 100000);
    data.destroy();

    const second = await c.passive();
    await c.expect('STOR whole.bin', 150);
    c.send('QUIT');
    second.end(Buffer.alloc(5000, 3));
    assert.equal((await c.reply()).code, 226);
    assert.equal((await c.reply()).code, 221);
    await c.closed;
    assert.equal(fs.statSync(path.join(t.home, 'whole.bin')).size, 5000);
  });

  it('a transfer command without a data channel is 425; one whose data connection never comes ends with 425 after the timeout', async () => {
    fs.writeFileSync(path.join(t.home, 'a'), 'x');
    const c = await t.login();
    await c.expect('RETR a', 425);
    await c.expect('EPSV', 229);
    await c.expect('RETR a', 150);
    const late = await c.reply(); // dataTimeoutMs is 2 s here.
    assert.equal(late.code, 425);
    assert.match(late.text, /none came within 2 s/);
    await c.expect('NOOP', 200);
    await c.quit();
  });

  it('active mode: PORT and EPRT to the client\'s own address carry transfers', async () => {
    fs.writeFileSync(path.join(t.home, 'a.bin'), pattern(300000, 3));
    const c = await t.login();
    await c.expect('TYPE I', 200);
    for (const style of ['PORT', 'EPRT']) {
      const listener = net.createServer({ allowHalfOpen: true });
      await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
      const port = (listener.address() as net.AddressInfo).port;
      const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
      await c.expect(style === 'PORT' ? `PORT 127,0,0,1,${port >> 8},${port & 255}` : `EPRT |1|127.0.0.1|${port}|`, 200);
      await c.expect('RETR a.bin', 150);
      const data = await readAll(await accepted);
      assert.equal((await c.reply()).code, 226);
      assert.equal(sha256(data), sha256(pattern(300000, 3)));
      listener.close();
    }
    await c.expect('EPRT |2|::1|5000|', 522); // The control connection is IPv4.
    await c.quit();
  });

  for (const mechanism of mechanisms) {
    it(`${mechanism}: 20 sessions at once, each uploading and downloading its own file`, async () => {
      const other = await startServer({ mechanism });
      try {
        await Promise.all(Array.from({ length: 20 }, async (_, i) => {
          const c = await other.login();
          await c.expect('TYPE I', 200);
          const body = pattern(200000 + i * 1000, i + 1);
          assert.equal((await c.upload(`STOR f${i}`, body)).code, 226);
          const { data, reply } = await c.download(`RETR f${i}`);
          assert.equal(reply.code, 226);
          assert.equal(sha256(data), sha256(body));
          await c.quit();
        }));
        assert.equal(other.server.stats.transfers, 40);
      } finally {
        await other.stop();
      }
    });
  }

  it('a listener on ::1 serves IPv6 clients with EPSV, refuses PASV (it cannot carry IPv6), and EPRT |2|', async () => {
    const v6 = await startServer({ host: '::1' });
    try {
      const c = await FtpClient.connect(v6.port, { host: '::1' });
      await c.login(USER, 'correct horse battery staple');
      await c.expect('PASV', 425);
      await c.expect('EPSV 1', 522);
      const reply = await c.expect('EPSV 2', 229);
      const data = await connectTo(Number(/\|\|\|(\d+)\|/.exec(reply.text)![1]), { host: '::1' });
      const listing = readAll(data);
      await c.expect('LIST', 150);
      await listing;
      assert.equal((await c.reply()).code, 226);
      await c.expect('EPRT |1|127.0.0.1|5000|', 522);
      await c.quit();
    } finally {
      await v6.stop();
    }
  });
});
