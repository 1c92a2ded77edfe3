/**
 * The C programs of bench/ (the C ceilings and load generators), built here when the benchmark first needs
 * them, not on every install of the library: `cc -O2` into build/bench/, again when a source is newer.
 */
import * as fs from 'node:fs';
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
const outDir = path.join(packageRoot, 'build', 'bench');

const mtime = (file: string): number => fs.statSync(file).mtimeMs;

/** The program's path, compiled first if it is missing or older than its source or a header of bench/. */
export function programPath(name: ProgramName): string {
  const { source, flags } = PROGRAMS[name];
  const sourceFile = path.join(sourceDir, source);
  const output = path.join(outDir, name);
  const inputs = [sourceFile, ...fs.readdirSync(sourceDir).filter((f) => f.endsWith('.h')).map((f) => path.join(sourceDir, f))];
  if (fs.existsSync(output) && mtime(output) >= Math.max(...inputs.map(mtime))) return output;

  const compiler = process.env.CC || 'cc';
  fs.mkdirSync(outDir, { recursive: true });
  // Compiled beside its final name and renamed into place, so a concurrent run never sees half a file.
  const partial = `${output}.${process.pid}.tmp`;
  try {
    execFileSync(compiler, ['-O2', '-Wall', '-o', partial, sourceFile, ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
    fs.renameSync(partial, output);
  } catch (err) {
    fs.rmSync(partial, { force: true });
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
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
