/** iomux: the operating system's readiness APIs and raw non-blocking sockets, for Node.js. */
export { binding, constants, hasEpoll } from './native';
export type { Binding, BufferLike, Constants, SocketAddress, Linger, AcceptedSocket, Datagram, SocketOptionValue } from './native';
export { isSystemError, systemError, errnoName, SocketTimeoutError } from './errors';
export type { SystemError } from './errors';
export { PollFdArray } from './pollfds';
export { Socket, waitForDescriptor } from './socket';
export type { ShutdownHow } from './socket';
