/** poll(2): the interest set is passed whole on every wait, so a wait costs O(registered). */
import { binding, WaitMechanism } from '../native';
import { PollFdSelector } from './pollfd-selector';

const poll = binding.poll;

export class PollSelector<T = unknown> extends PollFdSelector<T> {
  readonly mechanism = 'poll';
  protected readonly waitMechanism = WaitMechanism.Poll;

  constructor() {
    super();
    if (!poll) throw new Error('poll() is not available on this platform; use WSAPollSelector');
  }

  protected waitNative(pollfds: ArrayBuffer, nfds: number, timeoutMs: number): number {
    return poll!(pollfds, nfds, timeoutMs);
  }
}
