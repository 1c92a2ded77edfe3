/**
 * The user store: a JSON file of accounts, each a scrypt hash with its own random salt. No password
 * is kept or written anywhere in plain text.
 *
 * - The file is rewritten whole and atomically (a temporary file, then rename), mode 0600.
 * - A running server sees accounts added or removed by `iomux ftp user add/del`: it reads the file
 *   again when its modification time, size or inode changed (one stat per login).
 * - scrypt costs ~50 ms of CPU by design. On an attached reactor it runs on libuv's thread pool,
 *   so the reactor keeps serving; on a blocking `run()` it runs inline. A verified login is then
 *   remembered as an HMAC under a random per-process key (never the password), so the same user
 *   logging in again costs microseconds; a wrong password always pays the full scrypt. An unknown
 *   user costs a scrypt too, so timing does not tell which names exist. The same check arriving
 *   while one runs on the pool joins it (many clients logging in as one user at once: one scrypt).
 */
import { createHmac, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface UserRecord {
  /** base64 */
  salt: string;
  /** base64 scrypt(password, salt) */
  hash: string;
  N: number;
  r: number;
  p: number;
}

interface UsersFile {
  version: 1;
  users: Record<string, UserRecord>;
}

const SCRYPT = { N: 16384, r: 8, p: 1 };
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
/** How long a verified login is remembered. */
const DEFAULT_CACHE_MS = 10 * 60 * 1000;

/** Names FTP gives a meaning of its own: never accounts. */
export const RESERVED_NAMES = new Set(['anonymous', 'ftp']);

/** Why `name` cannot be a user name (it becomes a directory name under the root), or null. */
export function userNameProblem(name: string): string | null {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/.test(name)) {
    return 'a user name is 1 to 32 letters, digits, "_", "." or "-", and starts with a letter, digit or "_"';
  }
  if (RESERVED_NAMES.has(name.toLowerCase())) return `"${name}" is reserved for anonymous login`;
  return null;
}

/** Why `password` is not acceptable, or null. */
export function passwordProblem(password: string): string | null {
  if (password.length < 8) return 'a password has at least 8 characters';
  if (password.length > 1024) return 'a password has at most 1024 characters';
  if (/[\0\r\n]/.test(password)) return 'a password cannot hold NUL, CR or LF';
  return null;
}

function hashWith(password: string, salt: Buffer, params: { N: number; r: number; p: number }): Buffer {
  return scryptSync(password, salt, KEY_LENGTH, { ...params, maxmem: 256 * params.N * params.r });
}

export function makeRecord(password: string): UserRecord {
  const salt = randomBytes(SALT_LENGTH);
  return { salt: salt.toString('base64'), hash: hashWith(password, salt, SCRYPT).toString('base64'), ...SCRYPT };
}

export function makeRecordAsync(password: string, done: (err: Error | null, record?: UserRecord) => void): void {
  const salt = randomBytes(SALT_LENGTH);
  scrypt(password, salt, KEY_LENGTH, { ...SCRYPT, maxmem: 256 * SCRYPT.N * SCRYPT.r }, (err, hash) => {
    if (err) done(err);
    else done(null, { salt: salt.toString('base64'), hash: hash.toString('base64'), ...SCRYPT });
  });
}

/** Stands in for an unknown user, so that a miss costs what a hit costs. */
const DUMMY: UserRecord = { salt: Buffer.alloc(SALT_LENGTH).toString('base64'), hash: Buffer.alloc(KEY_LENGTH).toString('base64'), ...SCRYPT };

function isRecord(value: unknown): value is UserRecord {
  const r = value as UserRecord;
  return typeof r === 'object' && r !== null && typeof r.salt === 'string' && typeof r.hash === 'string'
    && Number.isInteger(r.N) && Number.isInteger(r.r) && Number.isInteger(r.p);
}

interface Remembered {
  /** HMAC(key, password) of the last verified password. */
  mac: Buffer;
  /** The record it was verified against: a changed record forgets it. */
  hash: string;
  expires: number;
}

export type VerifyMode = 'sync' | 'async';

export class UserStore {
  private users = new Map<string, UserRecord>();
  private seen = '';
  private readonly macKey = randomBytes(32);
  private readonly remembered = new Map<string, Remembered>();
  /** Checks running on libuv's pool, by user and HMAC: the same login arriving again joins the one running. */
  private readonly inFlight = new Map<string, ((ok: boolean) => void)[]>();

  /** Opens `file` (a missing file is an empty store, created by the first add). */
  constructor(readonly file: string, private readonly cacheMs = DEFAULT_CACHE_MS) {
    this.reload(true);
  }

  /** Writes the file with no accounts if it does not exist yet (mode 0600), so that it can be served and watched. */
  createIfMissing(): void {
    this.reload();
    if (!fs.existsSync(this.file)) this.write();
  }

  list(): string[] {
    this.reload();
    return [...this.users.keys()].sort();
  }

  has(name: string): boolean {
    this.reload();
    return this.users.has(name);
  }

  /** Adds `name` (hashing here, ~50 ms). Throws if the name or password is not acceptable or taken. */
  add(name: string, password: string): void {
    this.checkNew(name, password);
    this.commit(name, makeRecord(password));
  }

  /** add() with the hash computed on libuv's thread pool. */
  addAsync(name: string, password: string, done: (err: Error | null) => void): void {
    try {
      this.checkNew(name, password);
    } catch (err) {
      done(err as Error);
      return;
    }
    makeRecordAsync(password, (err, record) => {
      if (err || !record) {
        done(err ?? new Error('scrypt failed'));
        return;
      }
      let added: boolean;
      try {
        added = this.addIfFree(name, record); // Taken meanwhile: false.
      } catch (e) {
        done(e as Error);
        return;
      }
      done(added ? null : new Error(`user "${name}" exists`));
    });
  }

  /** Adds `name` with a record made already (makeRecord); false, and nothing changed, if the name is taken. */
  addIfFree(name: string, record: UserRecord): boolean {
    const problem = userNameProblem(name);
    if (problem !== null) throw new Error(problem);
    if (this.has(name)) return false;
    this.commit(name, record);
    return true;
  }

  /** Gives `name` a new password (hashing here, ~50 ms); a login remembered with the old one is forgotten. */
  setPassword(name: string, password: string): void {
    const problem = passwordProblem(password);
    if (problem !== null) throw new Error(problem);
    if (!this.has(name)) throw new Error(`no user "${name}" in ${this.file}`);
    this.remembered.delete(name);
    this.commit(name, makeRecord(password));
  }

  /** Removes `name`; false if there was no such user. */
  remove(name: string): boolean {
    this.reload();
    if (!this.users.delete(name)) return false;
    this.remembered.delete(name);
    this.write();
    return true;
  }

  /** Calls `done(true)` if `password` is `name`'s, on this stack ('sync') or from libuv's pool ('async'). */
  verify(name: string, password: string, mode: VerifyMode, done: (ok: boolean) => void): void {
    this.reload();
    const record = this.users.get(name);
    const mac = createHmac('sha256', this.macKey).update(password).digest();
    const known = record === undefined ? undefined : this.remembered.get(name);
    if (record !== undefined && known !== undefined && known.hash === record.hash && known.expires > Date.now()
      && timingSafeEqual(known.mac, mac)) {
      if (mode === 'sync') done(true);
      else setImmediate(done, true); // Always later, as the slow path is: callers see one order.
      return;
    }
    const used = record ?? DUMMY;
    const salt = Buffer.from(used.salt, 'base64');
    const expected = Buffer.from(used.hash, 'base64');
    const finish = (hash: Buffer) => {
      const ok = record !== undefined && hash.length === expected.length && timingSafeEqual(hash, expected);
      if (ok && this.cacheMs > 0) this.remembered.set(name, { mac, hash: used.hash, expires: Date.now() + this.cacheMs });
      done(ok);
    };
    const params = { N: used.N, r: used.r, p: used.p, maxmem: 256 * used.N * used.r };
    if (mode === 'sync') {
      finish(scryptSync(password, salt, expected.length, params));
      return;
    }
    // 200 clients logging in as one user at once cost one scrypt, not 200.
    const key = `${name}\0${mac.toString('hex')}`;
    const joined = this.inFlight.get(key);
    if (joined !== undefined) {
      joined.push(done);
      return;
    }
    const waiting = [done];
    this.inFlight.set(key, waiting);
    scrypt(password, salt, expected.length, params, (err, hash) => {
      this.inFlight.delete(key);
      const ok = err === null && record !== undefined && hash.length === expected.length && timingSafeEqual(hash, expected);
      if (ok && this.cacheMs > 0) this.remembered.set(name, { mac, hash: used.hash, expires: Date.now() + this.cacheMs });
      for (const callback of waiting) callback(ok);
    });
  }

  private checkNew(name: string, password: string): void {
    const problem = userNameProblem(name) ?? passwordProblem(password);
    if (problem !== null) throw new Error(problem);
    if (this.has(name)) throw new Error(`user "${name}" exists`);
  }

  private commit(name: string, record: UserRecord): void {
    this.reload();
    this.users.set(name, record);
    this.write();
  }

  /** Reads the file again if it changed since the last read (or always, with `force`). */
  private reload(force = false): void {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.users = new Map();
      this.seen = '';
      return;
    }
    const signature = `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
    if (!force && signature === this.seen) return;
    let parsed: UsersFile;
    try {
      parsed = JSON.parse(fs.readFileSync(this.file, 'utf8')) as UsersFile;
    } catch (err) {
      throw new Error(`${this.file} is not a users file: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || parsed.version !== 1 || typeof parsed.users !== 'object' || parsed.users === null) {
      throw new Error(`${this.file} is not a users file (expected {"version": 1, "users": {...}})`);
    }
    const users = new Map<string, UserRecord>();
    for (const [name, record] of Object.entries(parsed.users)) {
      if (userNameProblem(name) === null && isRecord(record)) users.set(name, record);
    }
    this.users = users;
    this.seen = signature;
  }

  private write(): void {
    const data: UsersFile = { version: 1, users: Object.fromEntries([...this.users].sort(([a], [b]) => (a < b ? -1 : 1))) };
    fs.mkdirSync(path.dirname(path.resolve(this.file)), { recursive: true });
    const temporary = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
    fs.renameSync(temporary, this.file);
    this.reload(true);
  }
}
