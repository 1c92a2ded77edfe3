export { BaseRequestHandler, StreamRequestHandler } from './request-handler';
export type { HandlerServer, RequestHandlerClass } from './request-handler';
export { SocketReader, SocketWriter } from './socket-file';
export { RequestSocket } from './request-socket';
export { BaseServer } from './base-server';
export type { ServerOptions } from './base-server';
export { TCPServer } from './tcp-server';
export { ThreadingServer } from './threading-server';
export type { ThreadingServerOptions, ThreadingServerStats } from './threading-server';
