/** Choosing a mechanism: DefaultSelector is the best this platform has, decided once. */
import { binding, hasEpoll } from '../native';
import { EpollOptions, EpollSelector } from './epoll';
import { ioUringUnavailable, IoUringOptions, IoUringSelector } from './io-uring';
import { PollSelector } from './poll';
import { SelectSelector } from './select';
import { Selector } from './selector';

export type MechanismName = 'select' | 'poll' | 'epoll' | 'io_uring' | 'wsapoll';

/**
 * The mechanisms this platform has, best first. io_uring is listed when this process may use it
 * (ioUringUnavailable() says why not), after epoll: it is the newer, not the default, mechanism.
 */
export function availableMechanisms(): MechanismName[] {
  const names: MechanismName[] = [];
  if (hasEpoll(binding)) names.push('epoll');
  if (ioUringUnavailable() === null) names.push('io_uring');
  if (binding.poll) names.push('poll');
  if (binding.wsapoll) names.push('wsapoll');
  names.push('select');
  return names;
}

/** A selector for `mechanism`; epoll options apply to epoll only (edgeTriggered and maxEvents to io_uring too). */
export function createSelector<T = unknown>(mechanism: MechanismName, options: EpollOptions & IoUringOptions = {}): Selector<T> {
  switch (mechanism) {
    case 'epoll':
      return new EpollSelector<T>(options);
    case 'io_uring':
      return new IoUringSelector<T>({ edgeTriggered: options.edgeTriggered, maxEvents: options.maxEvents,
        entries: options.entries, cqEntries: options.cqEntries });
    case 'poll':
      return new PollSelector<T>();
    case 'select':
      return new SelectSelector<T>();
    case 'wsapoll': {
      // Loaded lazily: the module exists only where the platform has WSAPoll.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { WSAPollSelector } = require('./wsapoll') as { WSAPollSelector: new () => Selector<T> };
      return new WSAPollSelector();
    }
    default:
      throw new RangeError(`Unknown mechanism "${String(mechanism)}"; this platform has: ${availableMechanisms().join(', ')}`);
  }
}

/** The best mechanism available here: epoll on Linux, WSAPoll on Windows, else poll. */
export const DefaultSelector: new <T = unknown>() => Selector<T> = hasEpoll(binding)
  ? EpollSelector
  : binding.poll
    ? PollSelector
    : class DefaultWSAPollSelector<T = unknown> {
      constructor() {
        return createSelector<T>('wsapoll');
      }
    } as unknown as new <T = unknown>() => Selector<T>;
