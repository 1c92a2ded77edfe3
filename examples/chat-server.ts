/**
 * A custom server on the stream layer in about 30 lines: a line-based chat. Every line a client
 * sends goes to every other client; `/quit` leaves. Lines are framed (the sticky-packet fix), a line
 * over 1 KiB closes that client alone, a client idle for a minute is dropped, and so is a client too
 * slow to take what the others say: its queue is bounded, nobody can flood memory.
 * Run: node dist/examples/chat-server.js [port]
 */
import { Connection, LineDecoder, Listener, Reactor } from '../lib';

const reactor = new Reactor();
const clients = new Set<Connection>();
const listener = new Listener(reactor, { endpoint: { port: Number(process.argv[2] ?? 0) } }, (conn) => {
  clients.add(conn);
  conn.setIdleTimeout(60_000);
  const lines = new LineDecoder((line) => {
    if (line.toString() === '/quit') return conn.close();
    const message = Buffer.concat([line, Buffer.from('\n')]);
    for (const other of clients) {
      if (other !== conn && !other.write(message)) other.destroy(new Error('too slow'));
    }
  }, { maxLineLength: 1024, dropCarriageReturn: true });
  conn.onData = (data) => lines.push(data);
  conn.onClose = () => clients.delete(conn);
  conn.write(`welcome; ${clients.size - 1} other(s) here\n`);
});
console.log(`chat on 127.0.0.1:${listener.listen().port}`);
reactor.attach();
process.on('SIGINT', () => {
  listener.close();
  for (const conn of clients) conn.destroy();
  reactor.close();
});
