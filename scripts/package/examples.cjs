// node examples.cjs EXAMPLES-DIR: the examples README.md and docs/streams.md name, run from an installed
// package (test:package passes the global install's dist/examples) and driven by real clients: the chat
// server relays a line between two clients, and http-static serves a file with the bytes on disk.
// Exits 0 when both did, 1 with what went wrong otherwise; every child is stopped either way.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const examples = process.argv[2];
const children = [];

/** Starts an example and resolves with its port, read from its first line ("... on 127.0.0.1:PORT"). */
function start(file, args) {
  const child = spawn(process.execPath, [path.join(examples, file), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.on('exit', (code, signal) => reject(new Error(`${file} exited (${code ?? signal}) before listening: ${out}`)));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
  });
}

/** A client that collects what it receives; `until(text)` resolves once that much has arrived. */
function client(port) {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  const waiting = [];
  socket.setEncoding('utf8');
  socket.on('data', (text) => {
    received += text;
    for (const w of waiting.splice(0)) {
      if (received.includes(w.text)) w.resolve();
      else waiting.push(w);
    }
  });
  socket.on('error', (err) => { for (const w of waiting.splice(0)) w.reject(err); });
  return {
    socket,
    until: (text) => new Promise((resolve, reject) => {
      if (received.includes(text)) resolve();
      else waiting.push({ text, resolve: () => resolve(), reject });
    }),
  };
}

async function chat() {
  const port = await start('chat-server.js', ['0']);
  const alice = client(port);
  await alice.until('welcome; 0 other(s) here');
  const bob = client(port);
  await bob.until('welcome; 1 other(s) here');
  alice.socket.write('hello from the installed package\n');
  await bob.until('hello from the installed package\n');
  alice.socket.destroy();
  bob.socket.destroy();
  console.log('examples: chat-server relayed a line between two clients');
}

async function httpStatic() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-examples-'));
  const body = Buffer.from(Array.from({ length: 100000 }, (_, i) => i % 251));
  fs.writeFileSync(path.join(dir, 'data.bin'), body);
  try {
    const port = await start('http-static.js', [dir, '0']);
    const got = await new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/data.bin', agent: false }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      }).on('error', reject);
    });
    if (got.status !== 200 || !got.body.equals(body)) throw new Error(`http-static: status ${got.status}, ${got.body.length} bytes, not the file's ${body.length}`);
    console.log(`examples: http-static served ${body.length} bytes, equal to the file`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const deadline = setTimeout(() => { console.error('examples: no answer within 60 s'); process.exitCode = 1; stop(); }, 60000);
function stop() {
  clearTimeout(deadline);
  for (const child of children) child.kill('SIGKILL');
}

chat().then(httpStatic).then(stop, (err) => {
  console.error(`examples: ${err.message}`);
  process.exitCode = 1;
  stop();
});
