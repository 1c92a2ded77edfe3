/**
 * The part select, poll and WSAPoll share: the interest set lives in one PollFdArray that the
 * native wait uses in place, and readiness is read back from its revents. Each subclass names
 * its wait call and nothing else.
 */
import { constants, WaitMechanism, WaitThread } from '../native';
import { PollFdArray } from '../pollfds';
import { BaseSelector, EVENT_READ, EVENT_WRITE, SelectorKey } from './selector';

const { POLLIN, POLLOUT, POLLPRI, POLLHUP, POLLERR, POLLNVAL } = constants;
// An error or hang-up is news for a reader and for a writer alike: both will find out by trying.
const READ_BITS = POLLIN | POLLPRI | POLLHUP | POLLERR | POLLNVAL;
const WRITE_BITS = POLLOUT | POLLHUP | POLLERR | POLLNVAL;

function toPollEvents(events: number): number {
  return (events & EVENT_READ ? POLLIN : 0) | (events & EVENT_WRITE ? POLLOUT : 0);
}

export abstract class PollFdSelector<T = unknown> extends BaseSelector<T> {
  protected readonly pollfds = new PollFdArray(64);
  private readonly slots: SelectorKey<T>[] = [];

  /** The native wait over (pollfds, nfds, timeoutMs); returns how many entries have revents. */
  protected abstract waitNative(pollfds: ArrayBuffer, nfds: number, timeoutMs: number): number;
  /** Which wait the attached reactor's helper thread performs. */
  protected abstract readonly waitMechanism: WaitMechanism;

  armWait(thread: WaitThread, timeoutMs: number | null): void {
    thread.arm(this.waitMechanism, this.pollfds.buffer, this.pollfds.length, -1, timeoutMs);
  }

  protected add(key: SelectorKey<T>): void {
    key.slot = this.pollfds.push(key.fd, toPollEvents(key.events));
    this.slots[key.slot] = key;
  }

  protected update(key: SelectorKey<T>): void {
    this.pollfds.setEvents(key.slot, toPollEvents(key.events));
  }

  protected remove(key: SelectorKey<T>): void {
    const moved = this.pollfds.swapRemove(key.slot);
    if (moved >= 0) {
      const movedKey = this.slots[moved];
      movedKey.slot = key.slot;
      this.slots[key.slot] = movedKey;
    }
    this.slots.length = this.pollfds.length;
    key.slot = -1;
  }

  protected wait(timeoutMs: number): void {
    let pending = this.waitNative(this.pollfds.buffer, this.pollfds.length, timeoutMs);
    for (let i = 0; pending > 0 && i < this.pollfds.length; i++) {
      const revents = this.pollfds.revents(i);
      if (revents === 0) continue;
      pending--;
      const key = this.slots[i];
      const ready = ((revents & READ_BITS ? EVENT_READ : 0) | (revents & WRITE_BITS ? EVENT_WRITE : 0)) & key.events;
      if (ready === 0) continue;
      key.readyEvents = ready;
      this.pushReady(key);
    }
  }

  protected release(): void {
    this.pollfds.clear();
    this.slots.length = 0;
  }
}
