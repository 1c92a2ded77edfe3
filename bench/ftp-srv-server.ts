/**
 * ftp-srv (the Node FTP server on npm, built on `net` and fs streams) for the FTP benchmark: one
 * user, one root, logging off (as quiet as it gets).
 *
 *   node dist/bench/ftp-srv-server.js --root DIR --user NAME --pass PASSWORD
 *
 * Prints "listening on 127.0.0.1:PORT" when ready; SIGTERM/SIGINT close it.
 */
import * as net from 'node:net';
import * as path from 'node:path';

function option(name: string): string {
  const at = process.argv.indexOf(name);
  if (at < 0 || at + 1 >= process.argv.length) throw new Error(`ftp-srv-server needs ${name}`);
  return process.argv[at + 1];
}

const root = option('--root');
const user = option('--user');
const pass = option('--pass');

// A devDependency that only this benchmark needs; its logger is ftp-srv's own dependency.
const { FtpSrv } = require('ftp-srv') as typeof import('ftp-srv');
const bunyan = require(require.resolve('bunyan', { paths: [path.dirname(require.resolve('ftp-srv'))] })) as {
  createLogger(options: { name: string; level: string }): unknown;
};

const server = new FtpSrv({
  url: 'ftp://127.0.0.1:0',
  pasv_url: '127.0.0.1',
  anonymous: false,
  greeting: 'ftp-srv',
  log: bunyan.createLogger({ name: 'ftp-srv', level: 'fatal' }) as never,
});
server.on('login', ({ username, password }, resolve, reject) => {
  if (username === user && password === pass) resolve({ root });
  else reject(new Error('Login incorrect'));
});
server.listen().then(() => {
  const address = (server as unknown as { server: net.Server }).server.address() as net.AddressInfo;
  process.stdout.write(`listening on ${address.address}:${address.port}\n`);
}, (err: Error) => {
  process.stderr.write(`ftp-srv: ${err.message}\n`);
  process.exit(1);
});

const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
