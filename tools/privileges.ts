/**
 * Dropping root after binding: a server started as root to bind a privileged port (FTP's 21) binds,
 * then becomes an ordinary user for everything it does with what clients send.
 *
 * The account is looked up with `id` (so NSS sources such as LDAP count, as for any login), then:
 * initgroups (root's supplementary groups go), setgid, setuid — in that order, since after setuid
 * nothing else may change. glibc applies setuid/setgid to every thread of the process (libuv's pool
 * included). Afterwards, getting root back must fail; if it does not, the process stops.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

export interface Account {
  name: string;
  uid: number;
  gid: number;
}

/** The account `name` (a user name or a numeric uid) as the system knows it; throws if it has none. */
export function lookUpAccount(name: string): Account {
  if (process.platform === 'win32' || typeof process.setuid !== 'function') throw new Error('--user works on POSIX systems only');
  const id = (flag: string): string => {
    try {
      // `--`: a name that starts with '-' is a name, not an option.
      return execFileSync('id', [flag, '--', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    } catch {
      throw new Error(`--user ${name}: no such user on this system`);
    }
  };
  const account = { name: id('-un'), uid: Number(id('-u')), gid: Number(id('-g')) };
  if (account.uid === 0) throw new Error(`--user ${name} is root: give an unprivileged account`);
  return account;
}

/** Checks, before binding, that dropping to `account` can work at all (the process is root). */
export function checkCanDrop(account: Account): void {
  if (process.getuid!() !== 0) throw new Error(`--user ${account.name} needs the server to start as root (it drops root's privileges after binding)`);
}

/** Becomes `account` for good: its groups, its gid, its uid. */
export function dropPrivileges(account: Account): void {
  // Node has process.initgroups on POSIX (its type declarations leave it out).
  (process as unknown as { initgroups(user: string, extraGroup: number): void }).initgroups(account.name, account.gid);
  process.setgid!(account.gid);
  process.setuid!(account.uid);
  let regained = false;
  try {
    process.setuid!(0);
    regained = true;
  } catch {
    // EPERM: as it must be.
  }
  if (regained || process.getuid!() !== account.uid || process.geteuid!() !== account.uid || process.getegid!() !== account.gid) {
    throw new Error(`dropping privileges to ${account.name} failed; stopping`);
  }
}

/** Throws, naming what to fix, unless the current user can `mode` (fs.constants.R_OK, ...) `file`. */
export function checkAccess(file: string, mode: number, what: string, account: Account): void {
  try {
    fs.accessSync(file, mode);
  } catch {
    throw new Error(`${what} ${file} is not accessible to ${account.name} after dropping privileges: chown -R ${account.name} ${file}`);
  }
}
