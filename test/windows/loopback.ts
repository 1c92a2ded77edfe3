/** Loopback TCP fixtures for the Windows suites (Windows has no socketpair). */
import { binding, constants } from '../../lib/native';
import { closeAll, tcpPair } from '../fixtures';

/** A port on 127.0.0.1 that nothing listens on: bound, then released. */
export function closedPort(): number {
  const s = binding.socket(constants.AF_INET, constants.SOCK_STREAM);
  try {
    binding.bind(s, '127.0.0.1', 0);
    return binding.getsockname(s).port;
  } finally {
    binding.close(s);
  }
}

export interface TestSockets {
  /** Closes `fd` after the current test; returns it. */
  track(fd: number): number;
  /** Forgets `fd` (the test closed it, or handed it to an owner). */
  untrack(fd: number): void;
  /** A connected, non-blocking loopback TCP pair [client, server], closed after the test. */
  pair(): [number, number];
  /** A socket listening on 127.0.0.1 (an ephemeral port), closed after the test. */
  listener(): number;
}

/** Inside a describe(): hooks that close every socket a test made through the returned helpers. */
export function socketsPerTest(): TestSockets {
  let fds: number[] = [];
  beforeEach(() => {
    fds = [];
  });
  afterEach(() => closeAll(...fds));
  const sockets: TestSockets = {
    track(fd) {
      fds.push(fd);
      return fd;
    },
    untrack(fd) {
      fds = fds.filter((f) => f !== fd);
    },
    pair() {
      const p = tcpPair();
      fds.push(...p);
      return p;
    },
    listener() {
      const fd = sockets.track(binding.socket(constants.AF_INET, constants.SOCK_STREAM));
      binding.bind(fd, '127.0.0.1', 0);
      binding.listen(fd, 16);
      return fd;
    },
  };
  return sockets;
}
