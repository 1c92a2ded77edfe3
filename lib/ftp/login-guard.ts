/**
 * What slows down password guessing, per client address:
 * - every failed login is answered late (`delayMs` times the failures so far), and the session
 *   waits meanwhile: one connection cannot try faster than that;
 * - `maxFailures` failures within `lockoutMs` lock the address out for `lockoutMs` (even a right
 *   password is refused then: otherwise a lockout would only slow the guessing down);
 * - self-registration (SITE REGISTER, when enabled) is limited per address and hour.
 * The tables are bounded: entries expire, and the oldest go first past `maxEntries`.
 */

export interface LoginGuardOptions {
  /** The delay of the first failed login; the n-th waits n times as long. Default 1000 ms. */
  delayMs?: number;
  /** Failures within lockoutMs that lock an address out. Default 5. */
  maxFailures?: number;
  /** How long a lockout lasts, and the window failures are counted in. Default 15 minutes. */
  lockoutMs?: number;
  /** Accounts one address may register per hour. Default 3. */
  registrationsPerHour?: number;
  /** Most addresses remembered. Default 10000. */
  maxEntries?: number;
}

interface Failures {
  count: number;
  /** When the counting window started (the first failure). */
  since: number;
  lockedUntil: number;
}

const HOUR = 3600 * 1000;

export class LoginGuard {
  readonly delayMs: number;
  readonly maxFailures: number;
  readonly lockoutMs: number;
  private readonly registrationsPerHour: number;
  private readonly maxEntries: number;
  private readonly failures = new Map<string, Failures>();
  private readonly registrations = new Map<string, number[]>();

  /** `now`: a monotonic clock in ms (the reactor's). */
  constructor(options: LoginGuardOptions, private readonly now: () => number) {
    this.delayMs = options.delayMs ?? 1000;
    this.maxFailures = options.maxFailures ?? 5;
    this.lockoutMs = options.lockoutMs ?? 15 * 60 * 1000;
    this.registrationsPerHour = options.registrationsPerHour ?? 3;
    this.maxEntries = options.maxEntries ?? 10000;
    for (const [name, value] of Object.entries({ delayMs: this.delayMs, lockoutMs: this.lockoutMs })) {
      if (!(value >= 0) || !Number.isFinite(value)) throw new RangeError(`${name} must be a number of ms >= 0`);
    }
    if (!Number.isInteger(this.maxFailures) || this.maxFailures < 1) throw new RangeError('maxFailures must be an integer >= 1');
  }

  /** Milliseconds `address` stays locked out (0: not locked). */
  lockedFor(address: string): number {
    const entry = this.failures.get(address);
    if (entry === undefined) return 0;
    return Math.max(0, entry.lockedUntil - this.now());
  }

  /** Records a failed login: how long to wait before answering, and whether the address is now locked out. */
  failed(address: string): { delayMs: number; locked: boolean } {
    const now = this.now();
    let entry = this.failures.get(address);
    const lockoutOver = entry !== undefined && entry.lockedUntil > 0 && entry.lockedUntil <= now;
    const windowOver = entry !== undefined && entry.lockedUntil === 0 && now - entry.since >= this.lockoutMs;
    if (entry === undefined || lockoutOver || windowOver) {
      entry = { count: 0, since: now, lockedUntil: 0 };
    }
    this.failures.delete(address); // Re-inserted last: the map's order is the age order for pruning.
    this.failures.set(address, entry);
    entry.count++;
    const locked = entry.count >= this.maxFailures;
    if (locked) entry.lockedUntil = now + this.lockoutMs;
    this.prune(this.failures, (e) => e.lockedUntil <= now && now - e.since > this.lockoutMs);
    return { delayMs: this.delayMs * entry.count, locked };
  }

  /** A successful login forgets the address's failures (unless it is locked out, which refuses the login anyway). */
  succeeded(address: string): void {
    if (this.lockedFor(address) === 0) this.failures.delete(address);
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
    this.prune(this.registrations, (times) => times.every((t) => now - t >= HOUR));
    return true;
  }

  private prune<T>(table: Map<string, T>, expired: (value: T) => boolean): void {
    if (table.size <= this.maxEntries) return;
    for (const [key, value] of table) if (expired(value)) table.delete(key);
    for (const key of table.keys()) {
      if (table.size <= this.maxEntries) break;
      table.delete(key);
    }
  }
}
