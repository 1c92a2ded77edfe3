/**
 * A custom server on the stream layer in about 30 lines: a line-based chat. Every line a client
 * sends goes to every other client; `/quit` leaves. Lines are framed (the sticky-packet fix), a line
 * over 1 KiB closes that client alone, a client that says nothing for a minute is dropped (however
 * busy the room), and so is a client too slow to take what the others say: its queue is bounded,
 * nobody can flood memory. A client that quits but keeps its socket half-open harms no one: writes
 * to a connection that is closing are dropped, never thrown.
 * Run: node dist/examples/chat-server.js [port]
 */
import { LineDecoder, Listener, Reactor } from '../lib';

const reactor = new Reactor();
const listener = new Listener(reactor, { endpoint: { port: Number(process.argv[2] ?? 0) } }, (conn) => {
  conn.setIdleTimeout(60_000, { on: 'read' });
  const lines = new LineDecoder((line) => {
    if (line.toString() === '/quit') return conn.close();
    const message = Buffer.concat([line, Buffer.from('\n')]);
    for (const other of listener.connections) {
      // Skip whoever is leaving; cut off whoever is too slow to keep up (write() says stop).
      if (other !== conn && other.writable && !other.write(message)) other.destroy(new Error('too slow'));
    }
  }, { maxLineLength: 1024, dropCarriageReturn: true });
  conn.onData = (data) => lines.push(data);
  conn.write(`welcome; ${listener.connectionCount - 1} other(s) here\n`);
});
console.log(`chat on 127.0.0.1:${listener.listen().port}`);
reactor.attach();
process.on('SIGINT', () => listener.shutdown(1000, () => reactor.close()));
