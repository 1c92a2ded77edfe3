/**
 * A descriptor that another thread makes readable to interrupt a reactor blocked in run() — mio's
 * Waker. (A process.on('SIGTERM') listener is one such other thread's tool: on the thread that is
 * blocked in run() no listener can run until run() returns; docs/streams.md, "Signals".) A non-blocking socket pair: register
 * `readFd` for EVENT_READ, call wake() from anywhere in the process, drain() in the handler.
 */
import { binding, constants } from './native';

export class Waker {
  readonly readFd: number;
  readonly writeFd: number;
  private closed = false;
  private static readonly scratch = Buffer.alloc(64);
  private static readonly one = Buffer.from([1]);

  constructor() {
    if (!binding.socketpair) throw new Error('Waker needs socketpair(), which this platform lacks');
    [this.readFd, this.writeFd] = binding.socketpair(constants.AF_UNIX, constants.SOCK_STREAM | (constants.SOCK_NONBLOCK ?? 0));
    if (constants.SOCK_NONBLOCK === undefined) {
      binding.setNonBlocking(this.readFd, true);
      binding.setNonBlocking(this.writeFd, true);
    }
  }

  /** Makes readFd readable. A full buffer is already readable, so a would-block loses nothing. */
  wake(): void {
    if (!this.closed) binding.send(this.writeFd, Waker.one);
  }

  drain(): void {
    while (binding.recv(this.readFd, Waker.scratch) > 0) {
      // Keep reading until it would block.
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    binding.close(this.readFd);
    binding.close(this.writeFd);
  }
}
