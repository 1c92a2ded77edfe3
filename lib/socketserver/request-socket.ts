/**
 * The Socket a request handler gets. The server owns the descriptor's number: closing the socket
 * goes through the server's `release` (which, in a worker thread, checks the thread still owns it),
 * and detach() is refused, since a number taken out of the server's hands could be closed twice.
 */
import { constants, SocketAddress } from '../native';
import { Socket } from '../socket';

export function familyOf(address: SocketAddress): number {
  if (address.family === 'unix') return constants.AF_UNIX;
  return address.family === 'IPv6' ? constants.AF_INET6 : constants.AF_INET;
}

export class RequestSocket extends Socket {
  /** Wraps an accepted descriptor in blocking mode. */
  constructor(fd: number, peer: SocketAddress, private readonly release: (fd: number) => void) {
    super(familyOf(peer), constants.SOCK_STREAM, 0, fd);
    this.setTimeout(null);
  }

  override close(): void {
    if (this.closed) return;
    this.release(super.detach());
  }

  override detach(): number {
    throw new Error('A request\'s descriptor belongs to the server, which closes it after finish(): use the socket, or close() it');
  }

  /** Python's shutdown_request: half-close (so a reply in flight is not reset), then close. */
  finish(): void {
    if (this.closed) return;
    try {
      this.shutdown('write');
    } catch {
      // The peer may be gone already; closing is what matters.
    }
    this.close();
  }
}
