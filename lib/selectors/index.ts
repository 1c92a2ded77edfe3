export { EVENT_READ, EVENT_WRITE, SelectorKey, BaseSelector } from './selector';
export type { Selector } from './selector';
export { PollFdSelector } from './pollfd-selector';
export { SelectSelector } from './select';
export { PollSelector } from './poll';
export { EpollSelector } from './epoll';
export type { EpollOptions } from './epoll';
export { DefaultSelector, availableMechanisms, createSelector } from './default';
export type { MechanismName } from './default';
