/**
 * `iomux files` as users and scripts run it: child processes, real files, real signals. Each fault of
 * the issue is done for real — kill -9 of a client or of the server mid-transfer, SIGTERM, two clients
 * on one name, a full disk, a symlink leaving the directory, a source rewritten mid-download — and
 * each ends with the exit status and the one-line reason a script can act on, and a resume that
 * starts from what is held. Waits are on events: the server's log lines, process exits, and the
 * kernel's inotify events for a growing partial file (fs.watch), never on sleeps.
 */
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXIT } from '../tools/commands/files';
import {
  Log, mountTmpfs, partialOf, partials, removeTempDirs, sha256File, tempDir, tmpfsUnavailable, waitForSize, writePattern,
} from './files-fixtures';

const cli = path.resolve(__dirname, '..', 'tools', 'cli.js');
const MiB = 1024 * 1024;

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running `iomux files ...`: its exit, and what it printed so far. */
class Running {
  readonly child: ChildProcess;
  readonly exited: Promise<Ran>;
  stdout = '';
  stderr = '';
  readonly log = new Log();

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [cli, 'files', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let partialLine = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      this.stdout += d.toString();
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      partialLine += d.toString();
      const lines = partialLine.split('\n');
      partialLine = lines.pop()!;
      lines.forEach(this.log.add);
    });
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr }));
    });
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}

function files(...args: string[]): Promise<Ran> {
  return new Running(args).exited;
}

class Server extends Running {
  port = 0;

  constructor(readonly dir: string, extra: string[] = []) {
    super(['serve', '--dir', dir, '--port', '0', ...extra]);
  }

  async started(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      const onData = () => {
        const m = /^listening on 127\.0\.0\.1:(\d+)\n/.exec(this.stdout);
        if (m) {
          this.port = Number(m[1]);
          this.child.stdout!.off('data', onData);
          resolve();
        }
      };
      this.child.stdout!.on('data', onData);
      void this.exited.then((ran) => reject(new Error(`iomux files serve exited (${ran.code}): ${ran.stderr}`)));
    });
    return this;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** SIGTERM, and how it ended. */
  async stop(): Promise<Ran> {
    this.kill('SIGTERM');
    return this.exited;
  }
}

const servers: Server[] = [];

/** A field of /proc/PID/status, in bytes (VmHWM: the peak resident set, kept by the kernel). */
function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  if (!line) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(/(\d+)\s*kB/.exec(line)![1]) * 1024;
}

async function serve(dir: string, extra: string[] = []): Promise<Server> {
  const server = new Server(dir, extra);
  servers.push(server);
  return server.started();
}

describe('iomux files (CLI)', function () {
  this.timeout(60_000);

  afterEach(async () => {
    for (const server of servers.splice(0)) {
      if (server.child.exitCode === null && server.child.signalCode === null) server.kill('SIGKILL');
      await server.exited;
    }
  });

  after(removeTempDirs);

  it('serve (on select) prints where it listens; put and get exit 0 with one plain line each, and the files are identical', async () => {
    const dir = tempDir('cli-srv');
    const local = tempDir('cli-local');
    writePattern(path.join(local, 'data.bin'), 3 * MiB, 1);
    const server = await serve(dir, ['--mechanism', 'select']);
    const put = await files('put', path.join(local, 'data.bin'), '--to', server.address);
    assert.equal(put.code, EXIT.ok, put.stderr);
    assert.match(put.stdout, /^stored "data\.bin": 3145728 bytes, sha256 [0-9a-f]{64} verified; 3145728 bytes in [\d.]+ s \([\d.]+ MB\/s\)\n$/);
    assert.equal(put.stderr, '', 'no progress bar when stderr is not a terminal');
    const get = await files('get', 'data.bin', '--from', server.address, '-o', path.join(local, 'copy.bin'));
    assert.equal(get.code, EXIT.ok, get.stderr);
    assert.match(get.stdout, /^fetched "data\.bin" to .*copy\.bin: 3145728 bytes, sha256 [0-9a-f]{64} verified; /);
    assert.equal(sha256File(path.join(local, 'copy.bin')), sha256File(path.join(local, 'data.bin')));
    assert.equal(sha256File(path.join(dir, 'data.bin')), sha256File(path.join(local, 'data.bin')));
    // --name chooses the name on the server.
    const named = await files('put', path.join(local, 'data.bin'), '--to', server.address, '--name', 'other name.bin');
    assert.equal(named.code, EXIT.ok, named.stderr);
    assert.ok(fs.existsSync(path.join(dir, 'other name.bin')));
    const stopped = await server.stop();
    assert.equal(stopped.code, 0);
    assert.match(stopped.stdout, /^stats \{.*"stored":2,"sent":1,/m);
  });

  it('kill -9 of put mid-transfer: running it again resumes from the server\'s count, says from where, and the hash matches', async () => {
    const dir = tempDir('cli-srv');
    const local = tempDir('cli-local');
    const file = path.join(local, 'big.bin');
    writePattern(file, 8 * MiB, 2);
    const server = await serve(dir);
    const first = new Running(['put', file, '--to', server.address, '--limit-rate', '2M']);
    await waitForSize(partialOf(dir, 'big.bin'), 256 * 1024);
    first.kill('SIGKILL');
    assert.equal((await first.exited).signal, 'SIGKILL');
    const [, held] = await server.log.waitFor(/put "big\.bin" from .*: connection lost at byte (\d+) of 8388608; partial kept/);
    assert.ok(Number(held) >= 256 * 1024 && Number(held) < 8 * MiB, `held ${held}`);
    const again = await files('put', file, '--to', server.address);
    assert.equal(again.code, EXIT.ok, again.stderr);
    assert.match(again.stderr, new RegExp(`^resuming "big\\.bin" at byte ${held} of 8388608: the server holds the first ${held} bytes\\n$`));
    assert.match(again.stdout, new RegExp(`verified; resumed at byte ${held}, ${8 * MiB - Number(held)} bytes in`));
    await server.log.waitFor(new RegExp(`put "big\\.bin" from .*: resuming at byte ${held} of 8388608`));
    assert.equal(sha256File(path.join(dir, 'big.bin')), sha256File(file));
  });

  it('kill -9 of the server mid-transfer: the client exits 4 (connection lost); a restarted server resumes the upload', async () => {
    const dir = tempDir('cli-srv');
    const local = tempDir('cli-local');
    const file = path.join(local, 'big.bin');
    writePattern(file, 8 * MiB, 3);
    const server = await serve(dir);
    const put = new Running(['put', file, '--to', server.address, '--limit-rate', '2M']);
    await waitForSize(partialOf(dir, 'big.bin'), 256 * 1024);
    server.kill('SIGKILL');
    const lost = await put.exited;
    assert.equal(lost.code, EXIT['connection lost']);
    assert.match(lost.stderr, /^iomux files put: connection lost: .*after sending up to byte \d+ of 8388608; run the same command again to resume from what the server holds\n$/);
    const held = partials(dir)[0].size;
    const restarted = await serve(dir);
    const again = await files('put', file, '--to', restarted.address);
    assert.equal(again.code, EXIT.ok, again.stderr);
    assert.match(again.stdout, new RegExp(`resumed at byte ${held}, `));
    assert.equal(sha256File(path.join(dir, 'big.bin')), sha256File(file));
  });

  it('SIGTERM mid-transfer: the server exits 0 with its stats and keeps the partial; the client is told why (exit 4)', async () => {
    const dir = tempDir('cli-srv');
    const local = tempDir('cli-local');
    const file = path.join(local, 'big.bin');
    writePattern(file, 8 * MiB, 4);
    const server = await serve(dir);
    const put = new Running(['put', file, '--to', server.address, '--limit-rate', '2M']);
    await waitForSize(partialOf(dir, 'big.bin'), 256 * 1024);
    const stopped = await server.stop();
    assert.equal(stopped.code, 0);
    assert.match(stopped.stdout, /^stats \{.*"interrupted":1/m);
    assert.match(stopped.stderr, /put "big\.bin" from .*: connection closed by shutdown at byte \d+ of 8388608; partial kept/);
    const lost = await put.exited;
    assert.equal(lost.code, EXIT['connection lost']);
    assert.match(lost.stderr, /^iomux files put: connection lost: the server is shutting down; try again later\n$/);
    assert.equal(partials(dir).length, 1);
    const restarted = await serve(dir);
    const again = await files('put', file, '--to', restarted.address);
    assert.equal(again.code, EXIT.ok, again.stderr);
    assert.match(again.stdout, /resumed at byte [1-9]\d*, /);
  });

  it('two clients putting the same name at once: the second exits 2 (refused: busy); the first one\'s file is stored', async () => {
    const dir = tempDir('cli-srv');
    const local = tempDir('cli-local');
    writePattern(path.join(local, 'one.bin'), 4 * MiB, 5);
    writePattern(path.join(local, 'two.bin'), 4 * MiB, 6);
    const server = await serve(dir);
    const first = new Running(['put', path.join(local, 'one.bin'), '--to', server.address, '--name', 'shared.bin', '--limit-rate', '2M']);
    await server.log.waitFor(/put "shared\.bin" from .*: receiving 4194304 bytes/);
    // Hold the first client mid-upload (SIGSTOP) while the second one tries: no race with its end.
    first.kill('SIGSTOP');
    const second = await files('put', path.join(local, 'two.bin'), '--to', server.address, '--name', 'shared.bin');
    first.kill('SIGCONT');
    assert.equal(second.code, EXIT.refused);
    assert.match(second.stderr, /^iomux files put: refused: "shared\.bin" is being uploaded by another client; try again when it is done\n$/);
    assert.equal((await first.exited).code, EXIT.ok);
    assert.equal(sha256File(path.join(dir, 'shared.bin')), sha256File(path.join(local, 'one.bin')));
  });

  it('--max-size: a larger upload exits 2 before any byte is stored', async () => {
    const dir = tempDir('cli-srv');
    const local = tempDir('cli-local');
    writePattern(path.join(local, 'big.bin'), 2 * MiB, 7);
    const server = await serve(dir, ['--max-size', '1M']);
    const put = await files('put', path.join(local, 'big.bin'), '--to', server.address);
    assert.equal(put.code, EXIT.refused);
    assert.match(put.stderr, /^iomux files put: refused: "big\.bin" is 2097152 bytes; this server takes at most 1048576 \(--max-size\)\n$/);
    assert.deepEqual(fs.readdirSync(path.join(dir, '.iomux-partial')), []);
    assert.deepEqual(fs.readdirSync(dir), ['.iomux-partial']);
  });

  const noTmpfs = tmpfsUnavailable();
  (noTmpfs === null ? it : it.skip)(`no space (serve --dir on a 2 MiB tmpfs): exit 5, the partial kept, the server goes on serving${
    noTmpfs === null ? '' : ` [skipped here: ${noTmpfs}]`}`, async () => {
    const disk = mountTmpfs('2m');
    try {
      const local = tempDir('cli-local');
      writePattern(path.join(local, 'huge.bin'), 3 * MiB, 8);
      writePattern(path.join(disk.dir, 'small.bin'), 4096, 9);
      const server = await serve(disk.dir);
      const put = await files('put', path.join(local, 'huge.bin'), '--to', server.address);
      assert.equal(put.code, EXIT['no space']);
      assert.match(put.stderr, /^iomux files put: no space: no space left on the server after \d+ of 3145728 bytes of "huge\.bin"; what was written is kept for a retry\n$/);
      assert.equal(partials(disk.dir).length, 1);
      const get = await files('get', 'small.bin', '--from', server.address, '-o', path.join(local, 'small.bin'));
      assert.equal(get.code, EXIT.ok, get.stderr);
      disk.resize('8m');
      const again = await files('put', path.join(local, 'huge.bin'), '--to', server.address);
      assert.equal(again.code, EXIT.ok, again.stderr);
      assert.match(again.stdout, /resumed at byte [1-9]\d*, /);
      await server.stop();
    } finally {
      disk.unmount();
    }
  });

  it('a symlink leaving the directory: get exits 2 with the reason, and nothing is written locally', async () => {
    const dir = tempDir('cli-srv');
    const local = tempDir('cli-local');
    fs.symlinkSync('/etc/passwd', path.join(dir, 'passwd'));
    const server = await serve(dir);
    const get = await files('get', 'passwd', '--from', server.address, '-o', path.join(local, 'passwd'));
    assert.equal(get.code, EXIT.refused);
    assert.match(get.stderr, /^iomux files get: refused: "passwd" is a symbolic link to \/etc\/passwd, outside the served directory\n$/);
    assert.deepEqual(fs.readdirSync(local), []);
    const traversal = await files('get', '../etc/passwd', '--from', server.address, '-o', path.join(local, 'x'));
    assert.equal(traversal.code, EXIT.failed);
    assert.match(traversal.stderr, /cannot ask for "\.\.\/etc\/passwd": the name contains a path separator/);
  });

  it('kill -9 of get mid-download: running it again resumes from PATH.partial, confirmed by the server', async () => {
    const dir = tempDir('cli-srv');
    const local = tempDir('cli-local');
    writePattern(path.join(dir, 'src.bin'), 8 * MiB, 10);
    const out = path.join(local, 'src.bin');
    const server = await serve(dir);
    const first = new Running(['get', 'src.bin', '--from', server.address, '-o', out, '--limit-rate', '2M']);
    await waitForSize(`${out}.partial`, 256 * 1024);
    first.kill('SIGKILL');
    await first.exited;
    const held = fs.statSync(`${out}.partial`).size;
    const again = await files('get', 'src.bin', '--from', server.address, '-o', out);
    assert.equal(again.code, EXIT.ok, again.stderr);
    assert.match(again.stderr, new RegExp(`^resuming "src\\.bin" at byte ${held} of 8388608: the server confirmed the partial is of this version\\n$`));
    assert.match(again.stdout, new RegExp(`resumed at byte ${held}, `));
    assert.equal(sha256File(out), sha256File(path.join(dir, 'src.bin')));
    assert.deepEqual(fs.readdirSync(local), ['src.bin']);
  });

  it('a source rewritten in place during a download is caught: exit 3 (mismatch), nothing kept', async () => {
    const dir = tempDir('cli-srv');
    const local = tempDir('cli-local');
    const source = path.join(dir, 'moving.bin');
    writePattern(source, 8 * MiB, 11);
    const out = path.join(local, 'moving.bin');
    const server = await serve(dir);
    const get = new Running(['get', 'moving.bin', '--from', server.address, '-o', out, '--limit-rate', '4M']);
    await waitForSize(`${out}.partial`, 256 * 1024);
    // Same inode, same size, other bytes: what an editor saving in place does.
    const fd = fs.openSync(source, 'r+');
    fs.writeSync(fd, Buffer.alloc(8 * MiB, 0x5a), 0, 8 * MiB, 0);
    fs.closeSync(fd);
    const ran = await get.exited;
    assert.equal(ran.code, EXIT.mismatch, ran.stderr);
    assert.match(ran.stderr, /^iomux files get: mismatch: the 8388608 bytes received have sha256 [0-9a-f]{64}, not the [0-9a-f]{64} the server announced; the partial was dropped\n$/);
    assert.deepEqual(fs.readdirSync(local), []);
  });

  it('exit statuses for what goes wrong before a transfer: no server (4), a missing file (1), a missing name (2)', async () => {
    const dir = tempDir('cli-srv');
    const local = tempDir('cli-local');
    writePattern(path.join(local, 'f.bin'), 100, 12);
    const server = await serve(dir);
    const port = server.port;
    await server.stop();
    const refused = await files('put', path.join(local, 'f.bin'), '--to', `127.0.0.1:${port}`);
    assert.equal(refused.code, EXIT['connection lost']);
    assert.match(refused.stderr, /^iomux files put: connection lost: connect ECONNREFUSED/);
    const running = await serve(dir);
    const missing = await files('put', path.join(local, 'nope.bin'), '--to', running.address);
    assert.equal(missing.code, EXIT.failed);
    assert.match(missing.stderr, /^iomux files put: failed: .*nope\.bin: ENOENT/);
    const notFound = await files('get', 'nope.bin', '--from', running.address, '-o', path.join(local, 'nope.bin'));
    assert.equal(notFound.code, EXIT.refused);
    assert.match(notFound.stderr, /^iomux files get: refused: no file named "nope\.bin"\n$/);
    const badTarget = await files('put', path.join(local, 'f.bin'), '--to', 'nowhere');
    assert.notEqual(badTarget.code, 0);
    assert.match(badTarget.stderr, /expected HOST:PORT/);
  });

  it('memory: a 64 MiB put and get raise the server\'s peak RSS (VmHWM) by less than 32 MiB: files are never buffered', async () => {
    const dir = tempDir('cli-srv');
    const local = tempDir('cli-local');
    const file = path.join(local, 'big.bin');
    const block = Buffer.alloc(MiB);
    const fd = fs.openSync(file, 'w');
    for (let i = 0; i < 64; i++) {
      block.writeUInt32LE(i, 0);
      fs.writeSync(fd, block);
    }
    fs.closeSync(fd);
    writePattern(path.join(local, 'warm.bin'), 1000, 14);
    const server = await serve(dir);
    // A first small transfer starts the hashing thread: the baseline is the server ready to work.
    assert.equal((await files('put', path.join(local, 'warm.bin'), '--to', server.address)).code, EXIT.ok);
    const baseline = statusBytes(server.child.pid!, 'VmRSS');
    const put = await files('put', file, '--to', server.address);
    assert.equal(put.code, EXIT.ok, put.stderr);
    const get = await files('get', 'big.bin', '--from', server.address, '-o', path.join(local, 'back.bin'));
    assert.equal(get.code, EXIT.ok, get.stderr);
    const peak = statusBytes(server.child.pid!, 'VmHWM');
    assert.ok(peak - baseline < 32 * MiB,
      `the server's peak RSS rose by ${((peak - baseline) / MiB).toFixed(1)} MiB (from ${(baseline / MiB).toFixed(1)} MiB)`);
  });

  const script = spawnSync('script', ['--version'], { encoding: 'utf8' });
  const noScript = script.status === 0 ? null : 'script(1) from util-linux is not installed';
  (noScript === null ? it : it.skip)(`on a terminal (script(1) gives put a pty), a progress bar shows bytes, rate and ETA${
    noScript === null ? '' : ` [skipped here: ${noScript}]`}`, async () => {
    const dir = tempDir('cli-srv');
    const local = tempDir('cli-local');
    writePattern(path.join(local, 'tty.bin'), 4 * MiB, 13);
    const server = await serve(dir);
    const command = `${process.execPath} ${cli} files put ${path.join(local, 'tty.bin')} --to ${server.address} --limit-rate 8M`;
    const ran = await new Promise<Ran>((resolve) => {
      const child = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr: '' }));
    });
    assert.equal(ran.code, 0, ran.stdout);
    assert.match(ran.stdout, /hashing .*\d+% \| [\d.]+ \S+ of 4\.00 MiB/);
    assert.match(ran.stdout, /sending .*100% \| 4\.00 MiB of 4\.00 MiB \| [\d.]+ MB\/s \| ETA \d+s/);
    assert.match(ran.stdout, /stored "tty\.bin": 4194304 bytes, sha256 [0-9a-f]{64} verified/);
  });
});
