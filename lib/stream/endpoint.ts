/** Where a stream socket listens or connects: a TCP host and port, or a Unix socket path. */
import { binding, constants } from '../native';

export interface TcpEndpoint {
  /** A numeric address: '127.0.0.1', '::1', '0.0.0.0', '::' (no DNS lookup: it would block). Default 127.0.0.1. */
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

/** `bind` or `connect` on `fd` to `endpoint`. */
export function bindTo(fd: number, endpoint: Endpoint): void {
  if (isUnix(endpoint)) binding.bind(fd, endpoint.path);
  else binding.bind(fd, endpoint.host ?? '127.0.0.1', endpoint.port ?? 0);
}

export function connectTo(fd: number, endpoint: Endpoint): boolean {
  return isUnix(endpoint)
    ? binding.connect(fd, endpoint.path)
    : binding.connect(fd, endpoint.host ?? '127.0.0.1', endpoint.port ?? 0);
}
