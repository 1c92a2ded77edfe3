/**
 * The one buffer every connection on this thread reads into. A handler gets a view of it that is
 * valid until the handler returns (the next read overwrites it): keep a copy, not the view, of
 * anything needed later. One buffer per thread is enough because handlers run one at a time; each
 * worker thread loads its own copy of this module.
 */
let shared: Buffer = Buffer.allocUnsafe(64 * 1024);

/** The shared read buffer, at least `size` bytes long. */
export function readBuffer(size: number): Buffer {
  if (shared.length < size) shared = Buffer.allocUnsafe(size);
  return shared;
}
