/** iomux: the operating system's readiness APIs and raw non-blocking sockets, for Node.js. */
export { binding, constants, hasEpoll } from './native';
export type { Binding, BufferLike, Constants, SocketAddress, Linger, AcceptedSocket, Datagram, SocketOptionValue } from './native';
export { isSystemError, systemError, errnoName, SocketTimeoutError } from './errors';
export type { SystemError } from './errors';
export { PollFdArray } from './pollfds';
export { Socket, waitForDescriptor } from './socket';
export type { ShutdownHow } from './socket';
export { WaitMechanism } from './native';
export type { WaitThread, LoopWatcher, EpollBinding, IoUringBinding } from './native';
export {
  EVENT_READ, EVENT_WRITE, EVENT_CONDITION, SelectorKey, BaseSelector, PollFdSelector, SelectSelector, PollSelector, EpollSelector,
  WSAPollSelector, IoUringSelector, ioUringUnavailable, ReadonlyMapView,
  DefaultSelector, availableMechanisms, createSelector,
} from './selectors';
export type { Selector, RegisterOptions, EpollOptions, IoUringOptions, MechanismName } from './selectors';
export { Reactor } from './reactor';
export type { IoHandler, ReactorStats, AttachedVia, AttachOptions } from './reactor';
export type { Timer } from './timer-queue';
export { Waker } from './waker';
export { EchoServer } from './echo';
export type { EchoServerOptions, EchoStats, WriteStrategy } from './echo';
export {
  Connection, Listener, LineDecoder, LengthPrefixedDecoder, FrameError, FileTruncatedError, frameHeader, writeFrame,
  acceptErrorAction, isDisconnect, FRAME_HEADER_SIZE, TlsConnection, TlsContext, tlsUnavailable, fingerprint256,
} from './stream';
export type {
  ConnectionOptions, ConnectOptions, ListenerOptions, ListenerStats, Endpoint, TcpEndpoint, UnixEndpoint,
  LineDecoderOptions, LengthPrefixedOptions, ConnectionError, IdleTimeoutOptions, StateName, AddressedError, TlsOptions, TlsContextOptions,
} from './stream';
export {
  BaseRequestHandler, StreamRequestHandler, SocketReader, SocketWriter, RequestSocket, BaseServer, TCPServer, ThreadingServer,
} from './socketserver';
export type { HandlerServer, RequestHandlerClass, ServerOptions, ThreadingServerOptions, ThreadingServerStats } from './socketserver';
export { ThreadedEchoServer } from './echo/threaded-server';
export type { Balance, ThreadedEchoOptions, ThreadedEchoStats, ThreadStats } from './echo/threaded-server';
export { FileServer, putFile, getFile, TransferError } from './files';
export type { FileServerOptions, FileServerStats, PutOptions, GetOptions, TransferResult, Progress, FailureReason } from './files';
export { FtpServer, UserStore } from './ftp';
export type { FtpServerOptions, FtpStats, TransferRecord } from './ftp';
