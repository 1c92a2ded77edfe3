/**
 * The handler bench/costs.ts measures ThreadingServer with: a blocking echo that imports nothing
 * but the handler base class, so a worker's start-up is the pool's own cost, not a big module's.
 */
import { BaseRequestHandler } from '../lib/socketserver/request-handler';

export class EchoHandler extends BaseRequestHandler {
  static module = __filename;

  override handle(): void {
    const buffer = Buffer.allocUnsafe(4096);
    for (let n = this.request.recvInto(buffer); n > 0; n = this.request.recvInto(buffer)) this.request.sendAll(buffer.subarray(0, n));
  }
}
