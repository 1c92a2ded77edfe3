"""The tutorial's select echo server, as its readers know it, minimally fixed to be measured.

The shape is the tutorial's: `inputs` and `outputs` lists handed to select.select, a queue per
connection, reads and writes strictly separated (a received message is queued and the connection
added to `outputs`; the reply leaves when select reports it writable). The fixes, and nothing more:

- no print per loop iteration (it would measure the terminal);
- EOF (recv returns b''): stop reading, send what is queued, then close; a socket error (a reset
  peer) closes the connection and drops its queue;
- a short send keeps the rest at the head of the queue (a deque instead of queue.Queue, whose locks a
  single-threaded server does not need);
- TCP_NODELAY, like every other server measured; "listening on HOST:PORT" when ready; SIGTERM and
  SIGINT print "stats {...}" and exit.

    /usr/bin/python3 bench/py-select-echo.py [--host 127.0.0.1] [--port 0] [--backlog 4096]
"""
import collections
import json
import select
import signal
import socket
import sys


def option(name, fallback):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv[:-1] else fallback


def stop(signum, frame):
    print('stats ' + json.dumps({'accepted': accepted}), flush=True)
    sys.exit(0)


host = option('--host', '127.0.0.1')
server = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.setblocking(False)
server.bind((host, int(option('--port', '0'))))
server.listen(int(option('--backlog', '4096')))
port = server.getsockname()[1]
print(f'listening on [{host}]:{port}' if ':' in host else f'listening on {host}:{port}', flush=True)

accepted = 0
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)

inputs = [server]
outputs = []
message_queues = {}
finished = set()  # connections whose peer sent EOF: closed once their queue is sent


def drop(s):
    if s in outputs:
        outputs.remove(s)
    if s in inputs:
        inputs.remove(s)
    finished.discard(s)
    del message_queues[s]
    s.close()


while True:
    readable, writable, exceptional = select.select(inputs, outputs, inputs)
    for s in readable:
        if s is server:
            try:
                connection, address = s.accept()
            except BlockingIOError:
                continue
            connection.setblocking(False)
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            inputs.append(connection)
            message_queues[connection] = collections.deque()
            accepted += 1
            continue
        try:
            data = s.recv(65536)
        except BlockingIOError:
            continue
        except OSError:
            drop(s)
            continue
        if data:
            message_queues[s].append(data)
            if s not in outputs:
                outputs.append(s)
        elif message_queues[s]:
            inputs.remove(s)
            finished.add(s)
        else:
            drop(s)
    for s in writable:
        queue = message_queues.get(s)
        if queue is None:  # dropped while handling this round's reads
            continue
        if not queue:
            outputs.remove(s)
            if s in finished:
                drop(s)
            continue
        data = queue.popleft()
        try:
            sent = s.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            drop(s)
            continue
        if sent < len(data):
            queue.appendleft(data[sent:])
        elif not queue:
            if s in finished:
                drop(s)
            else:
                outputs.remove(s)
    for s in exceptional:
        if s in message_queues:
            drop(s)
