/**
 * The C programs of bench/ (the C ceilings and load generators), built here when the benchmark first needs
 * them, not on every install of the library: `cc -O2` into build/bench/, again when a source is newer. A
 * package folder the user cannot write to (a global install owned by root) gets them in a per-user cache
 * instead, $XDG_CACHE_HOME/iomux/bench-VERSION (~/.cache when unset).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile, execFileSync } from 'node:child_process';

export type ProgramName = 'bench-scaling' | 'bench-micro' | 'bench-loadgen' | 'bench-echo-server' | 'bench-file-pipe'
  | 'bench-ftp-load' | 'bench-soak-load' | 'bench-echo-uring';

/** Each program's source in bench/ and its extra compiler flags (every one includes bench/common.h). */
const PROGRAMS: Readonly<Record<ProgramName, { source: string; flags: readonly string[] }>> = {
  'bench-scaling': { source: 'scaling.c', flags: [] },
  'bench-micro': { source: 'micro.c', flags: [] },
  'bench-loadgen': { source: 'loadgen.c', flags: ['-lm'] },
  'bench-echo-server': { source: 'echo-server.c', flags: ['-pthread'] },
  'bench-file-pipe': { source: 'file-pipe.c', flags: [] },
  'bench-ftp-load': { source: 'ftp-load.c', flags: ['-pthread'] },
  'bench-soak-load': { source: 'soak-load.c', flags: ['-lm'] },
  'bench-echo-uring': { source: 'echo-uring.c', flags: [] },
};

const packageRoot = path.resolve(__dirname, '..', '..');
const sourceDir = path.join(packageRoot, 'bench');

/** The first of build/bench/ and the per-user cache that can be written to, made if missing. */
function programDir(): string {
  const version = (require('../../package.json') as { version: string }).version;
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  const candidates = [path.join(packageRoot, 'build', 'bench'), path.join(cache, 'iomux', `bench-${version}`)];
  for (const dir of candidates) {
    try {
      fs.mkdirSync(dir, { recursive: true });
      fs.accessSync(dir, fs.constants.W_OK);
      return dir;
    } catch (err) {
      if (!['EACCES', 'EPERM', 'EROFS'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    }
  }
  throw new Error(`nowhere to build the benchmark's C programs: ${candidates.join(' and ')} are not writable (set XDG_CACHE_HOME)`);
}

const mtime = (file: string): number => fs.statSync(file).mtimeMs;

/** The program's path, compiled first if it is missing or older than its source or a header of bench/. */
export function programPath(name: ProgramName): string {
  const { source, flags } = PROGRAMS[name];
  const sourceFile = path.join(sourceDir, source);
  const outDir = programDir();
  const output = path.join(outDir, name);
  const inputs = [sourceFile, ...fs.readdirSync(sourceDir).filter((f) => f.endsWith('.h')).map((f) => path.join(sourceDir, f))];
  if (fs.existsSync(output) && mtime(output) >= Math.max(...inputs.map(mtime))) return output;

  const compiler = process.env.CC || 'cc';
  // Compiled beside its final name and renamed into place, so a concurrent run never sees half a file.
  const partial = `${output}.${process.pid}.tmp`;
  try {
    execFileSync(compiler, ['-O2', '-Wall', '-o', partial, sourceFile, ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
    fs.renameSync(partial, output);
  } catch (err) {
    fs.rmSync(partial, { force: true });
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer; signal?: NodeJS.Signals | null };
    // Ctrl-C reaches the compiler too (one process group): say so, so the run ends as interrupted, not failed.
    if (e.signal) throw Object.assign(new Error(`${compiler} was stopped by ${e.signal} while building ${name}`), { signal: e.signal });
    if (e.code === 'ENOENT') {
      throw new Error(`${name} needs a C compiler to build bench/${source}, and there is no ${compiler}: install one (Debian: apt-get install gcc) or set CC`);
    }
    throw new Error(`${compiler} could not build ${name} from bench/${source}: ${e.stderr?.toString().trim() || e.message}`);
  }
  return output;
}

/** Runs a program to completion and parses each stdout line as JSON; a non-zero exit rejects with its stderr. */
export function runJsonLines<T>(file: string, args: readonly string[]): Promise<T[]> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 64 * 2 ** 20 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`${path.basename(file)} ${args.join(' ')} failed: ${stderr.trim() || error.message}`));
        return;
      }
      try {
        resolve(stdout.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as T));
      } catch (err) {
        reject(new Error(`${path.basename(file)} printed something that is not JSON lines: ${String(err)}`));
      }
    });
  });
}
