/** Real-socket fixtures shared by the selector, reactor and echo suites. */
import type { AttachedVia } from '../lib/attachment';
import { binding, constants } from '../lib/native';
import { availableMechanisms, createSelector, MechanismName } from '../lib/selectors/default';
import { EpollOptions } from '../lib/selectors/epoll';
import { Selector } from '../lib/selectors/selector';

/** A connected, non-blocking Unix stream pair; loopback TCP where there is no socketpair (Windows). */
export function socketPair(): [number, number] {
  if (!binding.socketpair) return tcpPair();
  return binding.socketpair(constants.AF_UNIX, constants.SOCK_STREAM | constants.SOCK_NONBLOCK!);
}

export function closeAll(...fds: number[]): void {
  for (const fd of fds) binding.close(fd);
}

export interface SelectorVariant {
  /** How the variant appears in test names. */
  name: string;
  mechanism: MechanismName;
  options: EpollOptions;
}

/** Every selector this platform has, epoll in both trigger modes. */
export function selectorVariants(): SelectorVariant[] {
  const variants: SelectorVariant[] = [
    { name: 'select', mechanism: 'select', options: {} },
  ];
  if (binding.poll) variants.push({ name: 'poll', mechanism: 'poll', options: {} });
  if (binding.wsapoll) variants.push({ name: 'wsapoll', mechanism: 'wsapoll', options: {} });
  if (binding.epoll_wait) {
    variants.push({ name: 'epoll', mechanism: 'epoll', options: {} });
    variants.push({ name: 'epoll-et', mechanism: 'epoll', options: { edgeTriggered: true } });
  }
  // Where the kernel lets this process use io_uring (ioUringUnavailable() says why not elsewhere).
  if (availableMechanisms().includes('io_uring')) {
    variants.push({ name: 'io_uring', mechanism: 'io_uring', options: {} });
    variants.push({ name: 'io_uring-et', mechanism: 'io_uring', options: { edgeTriggered: true } });
  }
  return variants;
}

export interface AttachVariant extends SelectorVariant {
  /** The route attach({ via }) takes; the reactor's attachedVia must say the same. */
  via: AttachedVia;
}

/**
 * Every selector with every route it can attach by: epoll and io_uring by Node's own loop ('uv-poll', where
 * the addon was built with libuv) and by the helper thread; the others by the helper thread.
 */
export function attachVariants(): AttachVariant[] {
  const variants: AttachVariant[] = [];
  for (const variant of selectorVariants()) {
    const pollable = variant.mechanism === 'epoll' || variant.mechanism === 'io_uring';
    const routes: AttachedVia[] = pollable && binding.LoopWatcher ? ['uv-poll', 'wait-thread'] : ['wait-thread'];
    for (const via of routes) {
      variants.push({ ...variant, via, name: routes.length > 1 ? `${variant.name} via ${via}` : variant.name });
    }
  }
  return variants;
}

export function makeSelector<T>(variant: SelectorVariant): Selector<T> {
  return createSelector<T>(variant.mechanism, variant.options);
}

/** A TCP connection over loopback (IPv4 or IPv6): [client, server-side], both non-blocking. */
export function tcpPair(family: number = constants.AF_INET): [number, number] {
  const host = family === constants.AF_INET6 ? '::1' : '127.0.0.1';
  const listener = binding.socket(family, constants.SOCK_STREAM);
  try {
    binding.bind(listener, host, 0);
    binding.listen(listener, 1);
    const client = binding.socket(family, constants.SOCK_STREAM);
    binding.connect(client, host, binding.getsockname(listener).port);
    binding.setNonBlocking(client, true);
    const server = binding.accept(listener, true);
    return [client, server];
  } finally {
    binding.close(listener);
  }
}
