export { Connection, isDisconnect } from './connection';
export type { ConnectionError, ConnectionOptions, ConnectOptions, IdleTimeoutOptions, StateName, WriteStrategy } from './connection';
export { Listener, acceptErrorAction } from './listener';
export type { ListenerOptions, ListenerStats } from './listener';
export type { AddressedError, Endpoint, TcpEndpoint, UnixEndpoint } from './endpoint';
export { LineDecoder, LengthPrefixedDecoder, FrameError, frameHeader, writeFrame, FRAME_HEADER_SIZE } from './framing';
export type { LineDecoderOptions, LengthPrefixedOptions } from './framing';
export { FileTruncatedError } from './write-queue';
