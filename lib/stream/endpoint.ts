/** Where a stream socket listens or connects: a TCP host and port, or a Unix socket path. */
import { isIP } from 'node:net';
import { isSystemError, SystemError } from '../errors';
import { binding, constants } from '../native';

export interface TcpEndpoint {
  /**
   * A numeric address ('127.0.0.1', '::1', '0.0.0.0', '::'), or 'localhost' (taken as 127.0.0.1,
   * without a lookup). Connection.connect also takes a host name, resolved with node:dns on an
   * attached reactor (docs/streams.md, "Host names"). Default 127.0.0.1.
   */
  host?: string;
  port?: number;
}

export interface UnixEndpoint {
  /** A Unix socket path. */
  path: string;
}

export type Endpoint = TcpEndpoint | UnixEndpoint;

export function isUnix(endpoint: Endpoint): endpoint is UnixEndpoint {
  return typeof (endpoint as UnixEndpoint).path === 'string';
}

/**
 * The numeric address `host` stands for without a lookup (a numeric address itself, 'localhost' as
 * 127.0.0.1, the default for none), or null for a name that needs one. Fixed, not resolved: a
 * lookup would block the reactor's thread (or need Node's loop, which run() does not turn).
 */
export function numericHost(host: string | undefined): string | null {
  if (host === undefined || host === '') return '127.0.0.1';
  if (isIP(host) !== 0) return host;
  if (host.toLowerCase() === 'localhost' || host.toLowerCase() === 'localhost.') return '127.0.0.1';
  return null;
}

/** `endpoint` with its host made numeric; a host name throws (listeners take no names but localhost). */
export function resolvedEndpoint(endpoint: Endpoint): Endpoint {
  if (isUnix(endpoint)) return endpoint;
  const host = numericHost(endpoint.host);
  if (host === null) {
    const err = new TypeError(`host must be a numeric address or 'localhost' here; got ${JSON.stringify(endpoint.host)}`);
    throw Object.assign(err, { code: 'ERR_INVALID_ARG_VALUE' });
  }
  return host === endpoint.host ? endpoint : { ...endpoint, host };
}

export function familyOf(endpoint: Endpoint): number {
  if (isUnix(endpoint)) return constants.AF_UNIX;
  return (endpoint.host ?? '127.0.0.1').includes(':') ? constants.AF_INET6 : constants.AF_INET;
}

/** A new non-blocking, close-on-exec stream socket for `endpoint`'s family. */
export function streamSocket(endpoint: Endpoint): number {
  const fd = binding.socket(familyOf(endpoint), constants.SOCK_STREAM | (constants.SOCK_NONBLOCK ?? 0));
  if (constants.SOCK_NONBLOCK === undefined) {
    try {
      binding.setNonBlocking(fd, true);
    } catch (err) {
      binding.close(fd);
      throw err;
    }
  }
  return fd;
}

/** `bind` or `connect` on `fd` to `endpoint`. Errors name the address, as Node's do. */
export function bindTo(fd: number, endpoint: Endpoint): void {
  try {
    if (isUnix(endpoint)) binding.bind(fd, endpoint.path);
    else binding.bind(fd, endpoint.host ?? '127.0.0.1', endpoint.port ?? 0);
  } catch (err) {
    throw withAddress(err, endpoint);
  }
}

export function connectTo(fd: number, endpoint: Endpoint): boolean {
  try {
    return isUnix(endpoint)
      ? binding.connect(fd, endpoint.path)
      : binding.connect(fd, endpoint.host ?? '127.0.0.1', endpoint.port ?? 0);
  } catch (err) {
    throw withAddress(err, endpoint);
  }
}

/** A system error with the address it concerns: what Node's say (`connect ECONNREFUSED 127.0.0.1:7000`). */
export interface AddressedError extends SystemError {
  /** The host (numeric) or Unix socket path. */
  address: string;
  /** The TCP port (absent for a Unix socket). */
  port?: number;
}

/**
 * Adds `address` and `port` to a system error and says them in its message, as Node's net does;
 * anything else is returned unchanged.
 */
export function withAddress(err: unknown, endpoint: Endpoint): unknown {
  if (!isSystemError(err)) return err;
  const e = err as AddressedError;
  if (isUnix(endpoint)) {
    e.address = endpoint.path;
    e.message = `${e.syscall} ${e.code} ${endpoint.path}`;
  } else {
    e.address = endpoint.host ?? '127.0.0.1';
    e.port = endpoint.port ?? 0;
    e.message = `${e.syscall} ${e.code} ${e.address}:${e.port}`;
  }
  return e;
}
