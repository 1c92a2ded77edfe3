/** Choosing a mechanism: DefaultSelector is the best this platform has, decided once. */
import { binding, hasEpoll } from '../native';
import { EpollOptions, EpollSelector } from './epoll';
import { PollSelector } from './poll';
import { SelectSelector } from './select';
import { Selector } from './selector';

export type MechanismName = 'select' | 'poll' | 'epoll' | 'wsapoll';

/** The mechanisms this platform has, best first. */
export function availableMechanisms(): MechanismName[] {
  const names: MechanismName[] = [];
  if (hasEpoll(binding)) names.push('epoll');
  if (binding.poll) names.push('poll');
  if (binding.wsapoll) names.push('wsapoll');
  names.push('select');
  return names;
}

/** A selector for `mechanism`; epoll options apply to epoll only. */
export function createSelector<T = unknown>(mechanism: MechanismName, options: EpollOptions = {}): Selector<T> {
  switch (mechanism) {
    case 'epoll':
      return new EpollSelector<T>(options);
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
