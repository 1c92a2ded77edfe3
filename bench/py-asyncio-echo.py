"""An asyncio echo server on the Protocol API, as Python's documentation writes it (its
"TCP Echo Server" example): data_received writes the data back on the transport, which sends at once
and buffers only what the kernel refuses. The default event loop (epoll on Linux); asyncio sets
TCP_NODELAY on its TCP transports, like every other server measured.

    /usr/bin/python3 bench/py-asyncio-echo.py [--host 127.0.0.1] [--port 0] [--backlog 4096]

Prints "listening on HOST:PORT" when ready; SIGTERM and SIGINT print "stats {...}" and exit.
"""
import asyncio
import json
import signal
import sys


def option(name, fallback):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv[:-1] else fallback


accepted = 0


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        global accepted
        accepted += 1
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def main():
    loop = asyncio.get_running_loop()
    stopped = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set_result, None)
    host = option('--host', '127.0.0.1')
    server = await loop.create_server(EchoProtocol, host, int(option('--port', '0')),
                                      backlog=int(option('--backlog', '4096')))
    port = server.sockets[0].getsockname()[1]
    print(f'listening on [{host}]:{port}' if ':' in host else f'listening on {host}:{port}', flush=True)
    await stopped
    print('stats ' + json.dumps({'accepted': accepted}), flush=True)


asyncio.run(main())
