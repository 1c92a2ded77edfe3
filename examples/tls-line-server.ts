/**
 * A TLS line server on the stream layer in about 20 lines: each line a client sends comes back upper-
 * cased over TLS; "quit" ends the session with close_notify. Framing, the idle timeout and
 * backpressure are the stream layer's, as for a plain server; TLS is one wrap per connection.
 * Run: node dist/examples/tls-line-server.js CERT KEY [port]   (npx iomux ftp cert makes CERT and KEY)
 * Then: openssl s_client -quiet -connect 127.0.0.1:PORT   (or any TLS client)
 */
import { LineDecoder, Listener, Reactor, TlsConnection, TlsContext } from '../lib';

const [certFile, keyFile, port] = process.argv.slice(2);
const context = TlsContext.server({ certFile, keyFile });
const reactor = new Reactor();
const listener = new Listener(reactor, { endpoint: { port: Number(port ?? 0) } }, (plain) => {
  const conn = TlsConnection.server(plain, { context });
  conn.setIdleTimeout(60_000);
  const lines = new LineDecoder((line) => {
    if (line.toString() === 'quit') return conn.end('bye\n');
    conn.write(`${line.toString().toUpperCase()}\n`);
  }, { maxLineLength: 1024, dropCarriageReturn: true });
  conn.onSecure = () => conn.write(`hello over ${conn.protocol}; "quit" ends\n`);
  conn.onData = (data) => lines.push(data);
});
console.log(`tls line server on 127.0.0.1:${listener.listen().port}`);
reactor.attach();
process.on('SIGINT', () => {
  listener.close();
  reactor.close();
});
