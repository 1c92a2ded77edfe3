/**
 * select(2): like poll, plus its hard limit: an fd_set holds descriptors below FD_SETSIZE, so a
 * larger descriptor is refused at register() with a RangeError rather than corrupting memory.
 */
import { binding, constants, WaitMechanism } from '../native';
import { PollFdSelector } from './pollfd-selector';
import { SelectorKey } from './selector';

export class SelectSelector<T = unknown> extends PollFdSelector<T> {
  readonly mechanism = 'select';
  protected readonly waitMechanism = WaitMechanism.Select;
  /** The largest descriptor number select() can watch, plus one. */
  static readonly FD_SETSIZE = constants.FD_SETSIZE;

  protected override add(key: SelectorKey<T>): void {
    // On POSIX the limit is on the descriptor's value; Windows' fd_set is a counted array.
    const full = binding.platform === 'win32' ? this.map.size > constants.FD_SETSIZE : key.fd >= constants.FD_SETSIZE;
    if (full) {
      throw new RangeError(`select() cannot watch fd ${key.fd}: FD_SETSIZE is ${constants.FD_SETSIZE}; use poll or epoll`);
    }
    super.add(key);
  }

  protected waitNative(pollfds: ArrayBuffer, nfds: number, timeoutMs: number): number {
    return binding.selectPollfds(pollfds, nfds, timeoutMs);
  }
}
