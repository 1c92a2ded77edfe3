// A TypeScript consumer (type-checked only, by scripts/test-package.sh, under moduleResolution node16 and
// bundler): the root and every subpath resolve to their types, and misuse is a type error, not `any`.
import { Reactor, EchoServer, DefaultSelector, binding, constants, type SocketAddress } from 'iomux';
import { hasEpoll } from 'iomux/native';
import { EpollSelector, EVENT_READ } from 'iomux/selectors';
import { Reactor as ReactorAgain } from 'iomux/reactor';
import { EchoServer as EchoAgain } from 'iomux/echo';
import { Connection, Listener, LineDecoder } from 'iomux/stream';
import { TCPServer } from 'iomux/socketserver';
import { FileServer } from 'iomux/files';
import { FtpServer } from 'iomux/ftp';

const reactor: Reactor = new ReactorAgain(new DefaultSelector());
const echo: EchoServer = new EchoAgain({ reactor, host: '127.0.0.1', port: 0 });
const address: SocketAddress = echo.listen();
const port: number = address.port;
const fd: number = binding.socket(constants.AF_INET, constants.SOCK_STREAM);
const epoll: boolean = hasEpoll();
const read: number = EVENT_READ;
// @ts-expect-error: a port is a number; were the types `any`, this line would be an unused expect-error.
echo.listen('nope');
export { port, fd, epoll, read, EpollSelector, Connection, Listener, LineDecoder, TCPServer, FileServer, FtpServer };
