/**
 * Request handlers in the shape of Python's socketserver: a class whose setup(), handle() and
 * finish() run once per connection, with `request` a blocking Socket and `clientAddress` the peer.
 *
 *   class Echo extends StreamRequestHandler {
 *     static module = __filename;            // where worker threads load it from (ThreadingServer)
 *     handle() {
 *       for (let line = this.rfile.readLine(); line.length > 0; line = this.rfile.readLine()) this.wfile.write(line);
 *     }
 *   }
 *
 * The server builds the handler and calls setup(), then handle(), then finish() even if handle()
 * threw (Python's BaseRequestHandler.__init__ does the same; here the server calls them, since a
 * subclass's fields are only set once its constructor has returned). The server closes the request
 * afterwards: a handler may close it early, but must not detach() it (the server owns the number).
 */
import type { SocketAddress } from '../native';
import type { Socket } from '../socket';
import { SocketReader, SocketWriter } from './socket-file';

/** What a handler sees of its server: in a worker thread, a plain description of it. */
export interface HandlerServer {
  readonly serverAddress: SocketAddress;
}

export class BaseRequestHandler {
  constructor(
    /** The connection: a blocking Socket (Python's self.request). */
    readonly request: Socket,
    /** The peer's address (Python's self.client_address). */
    readonly clientAddress: SocketAddress,
    /** The server (TCPServer), or a description of it in a worker thread (ThreadingServer). */
    readonly server: HandlerServer,
  ) {}

  /** Before handle(). */
  setup(): void {}

  /** Serves the connection. */
  handle(): void {}

  /** After handle(), even when it threw. */
  finish(): void {}
}

/** A handler class: what TCPServer and ThreadingServer take. */
export interface RequestHandlerClass {
  new (request: Socket, clientAddress: SocketAddress, server: HandlerServer): BaseRequestHandler;
  /** The file worker threads load the class from (ThreadingServer): set it to `__filename`. */
  module?: string;
  /** Its export name in that file, when it differs from the class's name. */
  exportName?: string;
}

/** Adds Python's rfile/wfile: line and exact-length reads, whole writes. */
export class StreamRequestHandler extends BaseRequestHandler {
  /** A timeout for every call on the request, in ms (null: block), applied in setup(). */
  static timeout: number | null = null;
  rfile!: SocketReader;
  wfile!: SocketWriter;

  override setup(): void {
    const timeout = (this.constructor as typeof StreamRequestHandler).timeout;
    if (timeout !== null) this.request.setTimeout(timeout);
    this.rfile = new SocketReader(this.request);
    this.wfile = new SocketWriter(this.request);
  }
}

/** Runs one request through `Handler` on the calling thread; returns the handler's error, if any. */
export function runHandler(Handler: RequestHandlerClass, request: Socket, clientAddress: SocketAddress,
  server: HandlerServer): unknown {
  try {
    const handler = new Handler(request, clientAddress, server);
    handler.setup();
    try {
      handler.handle();
    } finally {
      handler.finish();
    }
    return null;
  } catch (err) {
    return err ?? new Error(String(err));
  }
}

/** Python's handle_error text: which request failed, then the stack. */
export function describeHandlerError(clientAddress: SocketAddress, err: unknown): string {
  const who = clientAddress.family === 'unix' ? `unix:${clientAddress.address}`
    : clientAddress.family === 'IPv6' ? `[${clientAddress.address}]:${clientAddress.port}` : `${clientAddress.address}:${clientAddress.port}`;
  const detail = err instanceof Error ? err.stack ?? `${err.name}: ${err.message}` : String(err);
  return `Exception occurred during processing of request from ${who}\n${detail}`;
}
