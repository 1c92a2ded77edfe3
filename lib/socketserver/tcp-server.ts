/**
 * Python's TCPServer: synchronous, one client at a time. Each connection's handler runs on the
 * accepting thread, blocking it; the next client waits in the kernel's backlog meanwhile.
 */
import type { SocketAddress } from '../native';
import { BaseServer } from './base-server';
import { describeHandlerError, HandlerServer, runHandler } from './request-handler';
import { RequestSocket } from './request-socket';
import { binding } from '../native';

export class TCPServer extends BaseServer implements HandlerServer {
  /** Connections served, and how many of their handlers threw. */
  readonly stats = { handled: 0, errors: 0 };

  protected processRequest(fd: number, peer: SocketAddress): void {
    let request: RequestSocket;
    try {
      request = new RequestSocket(fd, peer, (n) => binding.close(n));
    } catch (err) {
      binding.close(fd);
      this.log(describeHandlerError(peer, err));
      return;
    }
    const error = runHandler(this.RequestHandlerClass, request, peer, this);
    request.finish();
    this.stats.handled++;
    if (error !== null) {
      this.stats.errors++;
      this.log(describeHandlerError(peer, error));
    }
  }

  protected drain(): Promise<void> {
    // Handlers run on this thread: when shutdown() runs, none is in flight.
    return Promise.resolve();
  }

  protected closeRequests(): void {}
}
