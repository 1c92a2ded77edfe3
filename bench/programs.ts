/** Where the project's build put the C programs of bench/ (binding.gyp's executable targets). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';

export type ProgramName = 'bench-scaling' | 'bench-micro' | 'bench-loadgen' | 'bench-echo-server' | 'bench-file-pipe'
  | 'bench-ftp-load' | 'bench-soak-load';

const packageRoot = path.resolve(__dirname, '..', '..');

export function programPath(name: ProgramName): string {
  for (const config of ['Release', 'Debug']) {
    const candidate = path.join(packageRoot, 'build', config, name);
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error(`${name} is not built: run \`npm run build:native\` (node-gyp builds bench/*.c with the addon)`);
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
