/**
 * What TCPServer and ThreadingServer share, in the shape of Python's BaseServer: the constructor
 * binds and listens (Python's bind_and_activate), serveForever() accepts until shutdown(), and
 * serverClose() releases what is left. Accepting runs on a reactor attached to this thread's
 * event loop, so the thread keeps its timers, messages and signals while it serves.
 *
 * One difference from Python: shutdown() also stops listening (the port is released at once, and
 * connections still in the kernel's backlog are refused), since nothing would accept them.
 */
import { EventEmitter } from 'node:events';
import type { SocketAddress } from '../native';
import { Reactor } from '../reactor';
import { availableMechanisms, createSelector, MechanismName } from '../selectors/default';
import type { Endpoint } from '../stream/endpoint';
import { Listener } from '../stream/listener';
import type { RequestHandlerClass } from './request-handler';

export interface ServerOptions {
  /** The accepting thread's mechanism. Default: the best here. */
  mechanism?: MechanismName;
  /** Python's request_queue_size: the kernel's listen backlog. Default 511. */
  backlog?: number;
  /** SO_REUSEPORT on the listening socket (several servers on one port). */
  reusePort?: boolean;
  /** Where refusals and handler errors are reported. Default: standard error. */
  log?: (line: string) => void;
}

export abstract class BaseServer extends EventEmitter {
  /** The bound address (the real port when port 0 was asked for). */
  readonly serverAddress: SocketAddress;
  protected readonly log: (line: string) => void;
  protected readonly reactor: Reactor;
  private readonly listener: Listener;
  private serving: Promise<void> | null = null;
  private endServing: (() => void) | null = null;
  private stopping: Promise<void> | null = null;
  private closed = false;

  constructor(address: Endpoint, readonly RequestHandlerClass: RequestHandlerClass, options: ServerOptions = {}) {
    super();
    if (typeof RequestHandlerClass !== 'function') throw new TypeError('The request handler must be a class (see BaseRequestHandler)');
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.reactor = new Reactor(createSelector(options.mechanism ?? availableMechanisms()[0]));
    this.listener = new Listener(this.reactor, {
      endpoint: address,
      backlog: options.backlog,
      reusePort: options.reusePort,
      log: this.log,
      onDescriptor: (fd, peer) => this.processRequest(fd, peer),
    });
    try {
      this.serverAddress = this.listener.listen();
    } catch (err) {
      this.reactor.close();
      throw err;
    }
  }

  /** The listening descriptor (-1 once shut down). */
  fileno(): number {
    return this.listener.descriptor;
  }

  /**
   * Accepts and serves connections until shutdown(); resolves once shutdown() has finished.
   * Returns at once: the accepting runs on this thread's event loop (await it to block a script).
   */
  serveForever(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('This server is closed'));
    if (this.stopping) return this.stopping;
    this.serving ??= new Promise<void>((resolve) => {
      this.endServing = resolve;
      this.reactor.attach();
    });
    return this.serving;
  }

  /** Stops accepting, then lets the subclass finish the requests in flight; serveForever() resolves after. Idempotent. */
  shutdown(): Promise<void> {
    this.stopping ??= (async () => {
      this.listener.close();
      await this.drain();
      if (!this.reactor.selector.closed) this.reactor.detach();
      this.endServing?.();
    })();
    return this.stopping;
  }

  /** Releases the listening socket and the accepting reactor (after shutdown(), or instead of serving). Idempotent. */
  serverClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.listener.close();
    this.reactor.close();
    this.endServing?.();
    this.closeRequests();
  }

  /** A new connection (Python's process_request): `fd` is this server's to close. */
  protected abstract processRequest(fd: number, peer: SocketAddress): void;
  /** Resolves once the requests in flight are over (or given up on). */
  protected abstract drain(): Promise<void>;
  /** serverClose(): let go of what is still held (worker threads, queued connections). */
  protected abstract closeRequests(): void;
}
