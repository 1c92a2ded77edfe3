/**
 * WSAPoll (Windows): poll()'s contract over Winsock, on the same pollfd bookkeeping. The
 * selector asks only for POLLIN/POLLOUT, the flags WSAPoll accepts (it fails with EINVAL on
 * POLLPRI); a peer's close arrives as POLLHUP, which the shared base reports as readable.
 */
import { binding, WaitMechanism } from '../native';
import { PollFdSelector } from './pollfd-selector';

const wsapoll = binding.wsapoll;

export class WSAPollSelector<T = unknown> extends PollFdSelector<T> {
  readonly mechanism = 'wsapoll';
  // The helper thread's poll wait is WSAPoll on Windows (native/poll.cc).
  protected readonly waitMechanism = WaitMechanism.Poll;

  constructor() {
    super();
    if (!wsapoll) throw new Error('WSAPoll is available on Windows only; use DefaultSelector or PollSelector');
  }

  protected waitNative(pollfds: ArrayBuffer, nfds: number, timeoutMs: number): number {
    return wsapoll!(pollfds, nfds, timeoutMs);
  }
}
