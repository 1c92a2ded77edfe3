/** The errors iomux raises, shaped like Node's own system errors. */
import { constants } from './native';

/** What every failing system call throws: `err.code === 'EBADF'`, `err.syscall === 'epoll_ctl'`. */
export interface SystemError extends Error {
  /** The errno name, e.g. 'ECONNREFUSED'. */
  code: string;
  /** The negated errno value, as in Node's system errors. */
  errno: number;
  /** The system call that failed. */
  syscall: string;
}

export function isSystemError(err: unknown, code?: string): err is SystemError {
  if (!(err instanceof Error)) return false;
  const e = err as Partial<SystemError>;
  return typeof e.code === 'string' && typeof e.syscall === 'string' && (code === undefined || e.code === code);
}

/** Builds the same shape for failures detected in JavaScript (e.g. SO_ERROR after a connect). */
export function systemError(errnoValue: number, syscall: string, detail?: string): SystemError {
  const code = errnoName(errnoValue) ?? `E${errnoValue}`;
  const err = new Error(`${syscall} ${code}${detail ? ` ${detail}` : ''}`) as SystemError;
  err.code = code;
  err.errno = -errnoValue;
  err.syscall = syscall;
  return err;
}

let namesByValue: Map<number, string> | undefined;

/** 'ECONNREFUSED' for 111 on Linux; undefined for an unknown value. */
export function errnoName(value: number): string | undefined {
  if (!namesByValue) {
    namesByValue = new Map();
    for (const [name, v] of Object.entries(constants.errno)) {
      if (!namesByValue.has(v)) namesByValue.set(v, name);
    }
  }
  return namesByValue.get(value);
}

/** A blocking call on a socket with a timeout ran out of time (Python's socket.timeout). */
export class SocketTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(readonly syscall: string, readonly timeoutMs: number) {
    super(`${syscall} timed out after ${timeoutMs} ms`);
    this.name = 'SocketTimeoutError';
  }
}
