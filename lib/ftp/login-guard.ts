/**
 * What slows down password guessing. Failed logins are counted three ways, each in its own window
 * of `lockoutMs`:
 * - per (client address, user name): `maxFailures` lock that user out *from that address* — the
 *   guesser's own pair — while the same user elsewhere and other users behind the same address
 *   (a NAT, a tunnel) go on logging in;
 * - per user name, across addresses: `maxUserFailures` (default 4 × maxFailures) lock the name out
 *   everywhere — a guesser spread over many addresses;
 * - per address, across user names: `maxAddressFailures` (default 10 × maxFailures) lock the address
 *   out — a flood trying many names. New connections from it are refused at once.
 * A lockout lasts `lockoutMs`, and even the right password is refused meanwhile (otherwise a lockout
 * would only slow the guessing down). Unknown names are counted like known ones, so a lockout says
 * nothing about which names exist. A successful login forgets only its own (address, user) count:
 * another account's success — anonymous, self-registered, the guesser's own — clears nothing.
 *
 * Every failed login is also answered late (`delayMs` times that pair's failures so far), and the
 * session waits meanwhile. Self-registration (SITE REGISTER, when enabled) is limited per address
 * and hour. The tables are bounded: entries expire, and the oldest go first past `maxEntries`.
 */

export interface LoginGuardOptions {
  /** The delay of the first failed login of a (address, user) pair; the n-th waits n times as long. Default 1000 ms. */
  delayMs?: number;
  /** Failures of one user from one address within lockoutMs that lock that pair out. Default 5. */
  maxFailures?: number;
  /** Failures of one user from any address that lock the user out. Default 4 × maxFailures. */
  maxUserFailures?: number;
  /** Failures from one address, any user, that lock the address out. Default 10 × maxFailures. */
  maxAddressFailures?: number;
  /** How long a lockout lasts, and the window failures are counted in. Default 15 minutes. */
  lockoutMs?: number;
  /** Accounts one address may register per hour. Default 3. */
  registrationsPerHour?: number;
  /** Most entries remembered per table. Default 10000. */
  maxEntries?: number;
}

/** Which count locked a login out. */
export type Lockout = 'pair' | 'user' | 'address';

interface Failures {
  count: number;
  /** When the counting window started (the first failure). */
  since: number;
  lockedUntil: number;
}

/** One kind of failure count: a table of keys, each counted in its window and locked at its limit. */
class FailureCounts {
  private readonly table = new Map<string, Failures>();

  constructor(readonly limit: number, private readonly lockoutMs: number, private readonly maxEntries: number) {}

  lockedFor(key: string, now: number): number {
    const entry = this.table.get(key);
    return entry === undefined ? 0 : Math.max(0, entry.lockedUntil - now);
  }

  /** Counts a failure of `key`; returns its count in the window (the limit reached: locked). */
  fail(key: string, now: number): number {
    let entry = this.table.get(key);
    const lockoutOver = entry !== undefined && entry.lockedUntil > 0 && entry.lockedUntil <= now;
    const windowOver = entry !== undefined && entry.lockedUntil === 0 && now - entry.since >= this.lockoutMs;
    if (entry === undefined || lockoutOver || windowOver) entry = { count: 0, since: now, lockedUntil: 0 };
    this.table.delete(key); // Re-inserted last: the map's order is the age order for pruning.
    this.table.set(key, entry);
    entry.count++;
    if (entry.count >= this.limit && entry.lockedUntil <= now) entry.lockedUntil = now + this.lockoutMs;
    prune(this.table, this.maxEntries, (e) => e.lockedUntil <= now && now - e.since > this.lockoutMs);
    return entry.count;
  }

  /** Forgets `key`'s failures, unless it is locked out. */
  forget(key: string, now: number): void {
    if (this.lockedFor(key, now) === 0) this.table.delete(key);
  }
}

const HOUR = 3600 * 1000;

export class LoginGuard {
  readonly delayMs: number;
  readonly maxFailures: number;
  readonly maxUserFailures: number;
  readonly maxAddressFailures: number;
  readonly lockoutMs: number;
  private readonly registrationsPerHour: number;
  private readonly maxEntries: number;
  private readonly pairs: FailureCounts;
  private readonly names: FailureCounts;
  private readonly addresses: FailureCounts;
  private readonly registrations = new Map<string, number[]>();

  /** `now`: a monotonic clock in ms (the reactor's). */
  constructor(options: LoginGuardOptions, private readonly now: () => number) {
    this.delayMs = options.delayMs ?? 1000;
    this.maxFailures = options.maxFailures ?? 5;
    this.maxUserFailures = options.maxUserFailures ?? 4 * this.maxFailures;
    this.maxAddressFailures = options.maxAddressFailures ?? 10 * this.maxFailures;
    this.lockoutMs = options.lockoutMs ?? 15 * 60 * 1000;
    this.registrationsPerHour = options.registrationsPerHour ?? 3;
    this.maxEntries = options.maxEntries ?? 10000;
    for (const [name, value] of Object.entries({ delayMs: this.delayMs, lockoutMs: this.lockoutMs })) {
      if (!(value >= 0) || !Number.isFinite(value)) throw new RangeError(`${name} must be a number of ms >= 0`);
    }
    for (const [name, value] of Object.entries({
      maxFailures: this.maxFailures, maxUserFailures: this.maxUserFailures, maxAddressFailures: this.maxAddressFailures,
    })) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be an integer >= 1`);
    }
    this.pairs = new FailureCounts(this.maxFailures, this.lockoutMs, this.maxEntries);
    this.names = new FailureCounts(this.maxUserFailures, this.lockoutMs, this.maxEntries);
    this.addresses = new FailureCounts(this.maxAddressFailures, this.lockoutMs, this.maxEntries);
  }

  /**
   * Milliseconds a login from `address` stays refused (0: not locked), and why. Without `user`,
   * only the address's own lockout counts (the check at connection time).
   */
  lockedFor(address: string, user?: string): number {
    return this.lockout(address, user)?.ms ?? 0;
  }

  /** The longest lockout that applies to a login of `user` from `address`, or null. */
  lockout(address: string, user?: string): { ms: number; by: Lockout } | null {
    const now = this.now();
    const candidates: [number, Lockout][] = [[this.addresses.lockedFor(address, now), 'address']];
    if (user !== undefined) {
      candidates.push([this.pairs.lockedFor(pairKey(address, user), now), 'pair'], [this.names.lockedFor(user, now), 'user']);
    }
    let found: { ms: number; by: Lockout } | null = null;
    for (const [ms, by] of candidates) if (ms > 0 && (found === null || ms > found.ms)) found = { ms, by };
    return found;
  }

  /** Records a failed login: how long to wait before answering, and the lockout it caused, if any. */
  failed(address: string, user: string): { delayMs: number; locked: Lockout | null } {
    const now = this.now();
    const pair = this.pairs.fail(pairKey(address, user), now);
    this.names.fail(user, now);
    this.addresses.fail(address, now);
    return { delayMs: this.delayMs * pair, locked: this.lockout(address, user)?.by ?? null };
  }

  /** A successful login of `user` from `address` forgets that pair's failures, and nothing else. */
  succeeded(address: string, user: string): void {
    this.pairs.forget(pairKey(address, user), this.now());
  }

  /** Counts a registration attempt from `address`; false when it is over its hourly limit. */
  mayRegister(address: string): boolean {
    const now = this.now();
    const recent = (this.registrations.get(address) ?? []).filter((t) => now - t < HOUR);
    if (recent.length >= this.registrationsPerHour) {
      this.registrations.set(address, recent);
      return false;
    }
    recent.push(now);
    this.registrations.delete(address);
    this.registrations.set(address, recent);
    prune(this.registrations, this.maxEntries, (times) => times.every((t) => now - t >= HOUR));
    return true;
  }
}

/** A command line holds no LF, so no user name can contain the separator. */
function pairKey(address: string, user: string): string {
  return `${address}\n${user}`;
}

/** Past `maxEntries`: drops the expired entries, then the oldest. */
function prune<T>(table: Map<string, T>, maxEntries: number, expired: (value: T) => boolean): void {
  if (table.size <= maxEntries) return;
  for (const [key, value] of table) if (expired(value)) table.delete(key);
  for (const key of table.keys()) {
    if (table.size <= maxEntries) break;
    table.delete(key);
  }
}
