/** Host and port handling shared by the greeting server and client. */
import { isIPv6 } from 'node:net';
import { InvalidArgumentError } from 'commander';
import { constants } from '../lib/index';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 9999;

/** AF_INET6 for an IPv6 literal, else AF_INET ('localhost' and '' count as IPv4, as in Python). */
export function familyOf(host: string): number {
  return isIPv6(host) ? constants.AF_INET6 : constants.AF_INET;
}

/** `127.0.0.1:9999`, `[::1]:9999`. */
export function formatEndpoint(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** commander's parser for --port: an integer from 0 to 65535. */
export function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new InvalidArgumentError('must be an integer from 0 to 65535');
  return port;
}

/** commander's parser for a positive integer count or duration. */
export function parsePositive(text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1) throw new InvalidArgumentError('must be a positive integer');
  return value;
}
