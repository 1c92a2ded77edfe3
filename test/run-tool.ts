/** Real programs the tests drive (curl, lftp, python3): a clear failure when one is missing, and a run that reports how it ended. */
import { execFile, spawnSync } from 'node:child_process';

/** Fails clearly (naming the Debian package) when a client program is missing. */
export function requireTool(command: string, args: string[], debianPackage: string): void {
  const probe = spawnSync(command, args, { stdio: 'ignore' });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(`${command} is needed by this test and is not installed: apt-get install ${debianPackage} (.ci/run installs it)`);
  }
}

export function run(command: string, args: string[], options: { cwd?: string; timeoutMs?: number } = {}):
  Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: options.cwd, timeout: options.timeoutMs ?? 60000, maxBuffer: 16 * 2 ** 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
