/**
 * sticky-packets: TCP is a byte stream, and a reader that takes one recv for one send is wrong both
 * ways. Three connections, one after the other:
 *
 * 1. The peer makes several small sends back to back; the reader wakes once and one recv returns
 *    them all, run together.
 * 2. The peer makes one large send (its send buffer takes it whole) to a reader whose receive buffer
 *    is small (SO_RCVBUF, set before the handshake): the bytes arrive in many recvs, none larger than
 *    that buffer.
 * 3. The seed's upload: the peer sends the file's size as text, then the file, and the reader takes
 *    its first recv(1024) as the header. The header and the first bytes of the file arrive in that one
 *    recv: the reader parses the size but swallows the bytes behind it, and then waits forever for
 *    bytes that were already sent. The same stream with a length-prefixed frame (lib/stream/framing.ts:
 *    a u32 length, then the body) read the same 1024 bytes at a time gives back the file exactly.
 *
 * The reader drains until EAGAIN on every wake-up (so edge-triggered mechanisms behave too): the
 * counts are TCP's, the same under every mechanism.
 */
import { binding, constants } from '../../../lib/native';
import { frameHeader, LengthPrefixedDecoder } from '../../../lib/stream/framing';
import type { LabParams, Scenario, Trace } from '../model';
import { inSession, Session } from '../session';
import { describeGroups } from '../conclusions';

/** Phase 2's receive buffer (the kernel doubles what it is given, and reports the doubled value). */
const SMALL_RCVBUF = 4096;
/** Phase 2's send buffer: room for the whole large send in one call. */
const LARGE_SNDBUF = 4 * 1024 * 1024;
/** What the seed's reader asks of its first recv: "the header". */
const SEED_HEADER_RECV = 1024;

/** Sends all of `data` without blocking (the peer's buffers are sized for it); returns the send calls made. */
function sendAll(fd: number, data: Buffer): number {
  let calls = 0;
  for (let sent = 0; sent < data.length;) {
    const n = binding.send(fd, data, sent, data.length - sent);
    calls++;
    if (n > 0) sent += n;
    else binding.select(null, [fd], null, 1000);
  }
  return calls;
}

/** Text lines, like the seed's file: "line 0001 of the file\n"... (never starts with a digit). */
function fileContent(bytes: number): Buffer {
  const lines: string[] = [];
  let length = 0;
  for (let i = 1; length < bytes; i++) {
    const line = `line ${String(i).padStart(4, '0')} of the file\n`;
    lines.push(line);
    length += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

interface Recvs {
  /** Sizes of the recvs that returned data, in order. */
  sizes: number[];
}

/** "16 × 4096", "64 × 1024 + 5": recv sizes in a line. */
function describeSizes(sizes: number[]): string {
  if (sizes.length === 0) return 'EAGAIN';
  const runs: string[] = [];
  for (let i = 0; i < sizes.length;) {
    let j = i;
    while (j < sizes.length && sizes[j] === sizes[i]) j++;
    runs.push(j - i > 1 ? `${j - i} × ${sizes[i]}` : String(sizes[i]));
    i = j;
  }
  return runs.join(' + ');
}

/**
 * Reads on each wake-up: `first` (once, on the first wake-up) and then recv(`size`) until EAGAIN,
 * handing each piece to `take`, until `until()` or a wait reports nothing.
 */
function readUntil(s: Session, p: LabParams, reader: { label: string; size: number; first?: (fd: number) => string },
  until: () => boolean, take: (piece: Buffer) => void): Recvs {
  const result: Recvs = { sizes: [] };
  let first = reader.first;
  // One-shot disarms the descriptor on each report: re-arm it, as its handler must.
  const rearm = s.variant.mechanism === 'epoll-oneshot' ? { read: true } : undefined;
  while (!until()) {
    const reported = s.react(p.stallMs, ({ fd }) => {
      const opening = first ? `${first(fd)}; then ` : '';
      first = undefined;
      const before = result.sizes.length;
      let bytes = 0;
      while (!until()) {
        const n = s.recv(fd, reader.size);
        if (n <= 0) break;
        result.sizes.push(n);
        bytes += n;
        take(s.scratch.subarray(0, n));
      }
      const got = result.sizes.slice(before);
      const calls = `${got.length} recv(${reader.size}) call${got.length === 1 ? '' : 's'}`;
      return { action: `${reader.label}: ${opening}${calls} → ${describeSizes(got)} bytes`, bytes };
    }, rearm);
    if (!reported) return result;
  }
  return result;
}

export const stickyPackets: Scenario = {
  name: 'sticky-packets',
  title: 'TCP is a byte stream: sends run together in one recv, one send splits into many, and a size-then-data header is misread',
  defaults: { messages: 2, chunk: 100, bytes: 65536 },
  columns: [
    { key: 'coalesced', label: 'small sends → recvs' },
    { key: 'split', label: 'large send → recvs' },
    { key: 'largestRecv', label: 'largest recv' },
    { key: 'seedLost', label: 'seed header swallowed' },
    { key: 'framedLost', label: 'framed lost' },
  ],

  setup(p: LabParams): string {
    return `Three connections. (1) The peer sends ${p.messages} messages of ${p.chunk} bytes back to back; the reader ` +
      `drains on each wake-up with recv(65536). (2) The peer sends ${p.bytes} bytes in one send (SO_SNDBUF ` +
      `${LARGE_SNDBUF}) to a reader whose SO_RCVBUF is ${SMALL_RCVBUF}, set before the handshake. (3) The seed's upload: ` +
      `the peer sends the size of a ${p.bytes}-byte file as text, then the file, and the reader takes one recv(${SEED_HEADER_RECV}) ` +
      `as the header; then the same file as a length-prefixed frame (u32 length, then the body), read ${SEED_HEADER_RECV} ` +
      `bytes at a time. Each wait gives up after ${p.stallMs} ms.`;
  },

  run(variant, p): Promise<Trace> {
    return inSession(variant, (s) => {
      const interest = { read: true };

      // 1. Several sends, one recv.
      const small = s.watchedPair(interest, { roles: ['reader 1', 'peer 1'] });
      const message = Buffer.alloc(p.chunk, 0x61);
      for (let i = 1; i <= p.messages; i++) {
        sendAll(small.peer, message);
        s.timeline.step(`peer 1: send(${p.chunk}), message ${i} of ${p.messages}`, small.peer, p.chunk, `send ${p.chunk}`);
      }
      let got1 = 0;
      const total1 = p.messages * p.chunk;
      const coalesced = readUntil(s, p, { label: 'reader 1', size: 65536 }, () => got1 >= total1, (piece) => { got1 += piece.length; });
      s.watcher.remove(small.local);

      // 2. One send, many recvs.
      const big = s.watchedPair(interest, { receiveBuffer: SMALL_RCVBUF, roles: ['reader 2', 'peer 2'] });
      binding.setsockopt(big.peer, constants.SOL_SOCKET, constants.SO_SNDBUF, LARGE_SNDBUF);
      const rcvbuf = binding.getsockopt(big.local, constants.SOL_SOCKET, constants.SO_RCVBUF) as number;
      const sends2 = sendAll(big.peer, Buffer.alloc(p.bytes, 0x62));
      s.timeline.step(`peer 2: ${sends2 === 1 ? 'one send' : `${sends2} sends`} of ${p.bytes} bytes (reader's SO_RCVBUF: ${rcvbuf})`, big.peer, p.bytes, `send ${p.bytes}`);
      let got2 = 0;
      const split = readUntil(s, p, { label: 'reader 2', size: 65536 }, () => got2 >= p.bytes, (piece) => { got2 += piece.length; });
      s.watcher.remove(big.local);

      // 3. The seed's size-then-data upload, read the seed's way.
      const file = fileContent(p.bytes);
      const seed = s.watchedPair(interest, { roles: ['seed reader', 'seed peer'] });
      const header = Buffer.from(String(file.length));
      sendAll(seed.peer, header);
      sendAll(seed.peer, file);
      s.timeline.step(`seed peer: send("${header}") then send(${file.length}) of the file, back to back`, seed.peer, header.length + file.length, 'size, then file');
      let headerRecv = 0;
      let announced = -1;
      let stored = 0;
      const storedPieces: Buffer[] = [];
      // The seed's reader: size = int(recv(1024)), then recv(1024) until it has that many bytes.
      const seedRead = readUntil(s, p, {
        label: 'seed reader',
        size: SEED_HEADER_RECV,
        first: (fd) => {
          headerRecv = Math.max(0, s.recv(fd, SEED_HEADER_RECV));
          const text = s.scratch.subarray(0, headerRecv).toString('latin1');
          announced = Number.parseInt(text, 10);
          return `size = recv(${SEED_HEADER_RECV}) → ${headerRecv} bytes "${text.slice(0, 12).replace(/\n/g, '\\n')}…" → ${announced}, ` +
            `${headerRecv - header.length} bytes of the file lost with it`;
        },
      }, () => announced >= 0 && stored >= announced, (piece) => {
        stored += piece.length;
        storedPieces.push(Buffer.from(piece));
      });
      const storedBytes = Buffer.concat(storedPieces);
      const seedMissing = Math.max(0, announced - stored);
      if (seedMissing > 0) s.timeline.stall(p.stallMs, `${stored} of ${announced} bytes of the file: it waits for ${seedMissing} that were already sent`, seedMissing);
      s.watcher.remove(seed.local);

      // 3'. The same file, framed: a u32 length, then the body.
      const framed = s.watchedPair(interest, { roles: ['framed reader', 'framed peer'] });
      sendAll(framed.peer, frameHeader(file.length));
      sendAll(framed.peer, file);
      s.timeline.step(`framed peer: send(4-byte length ${file.length}) then send(${file.length}) of the file, back to back`, framed.peer, 4 + file.length, 'length, then file');
      const frames: Buffer[] = [];
      const decoder = new LengthPrefixedDecoder((body) => frames.push(Buffer.from(body)), { maxFrameSize: file.length });
      const framedRead = readUntil(s, p, { label: 'framed reader', size: SEED_HEADER_RECV }, () => frames.length > 0, (piece) => decoder.push(piece));
      const framedBytes = frames[0]?.length ?? 0;
      const framedExact = frames.length === 1 && frames[0].equals(file);
      s.timeline.step(framedExact
        ? `framed reader: 1 frame of ${framedBytes} bytes, identical to the file`
        : `framed reader: ${frames.length} frames; the file did not come back whole`, null, null, framedExact ? 'file intact' : 'file damaged');
      s.registration = `each reader: ${s.watcher.describe(framed.local, interest)}`;

      const seedLost = headerRecv - header.length;
      return s.finish({
        bytesRead: got1 + got2 + headerRecv + seedRead.sizes.reduce((a, b) => a + b, 0) + framedRead.sizes.reduce((a, b) => a + b, 0),
        bytesLeft: seedMissing,
        stalled: seedMissing > 0,
        counts: {
          coalesced: `${p.messages} → ${coalesced.sizes.length}`,
          sends1: p.messages,
          recvs1: coalesced.sizes.length,
          bytes1: got1,
          split: `${sends2} → ${split.sizes.length}`,
          sends2,
          recvs2: split.sizes.length,
          bytes2: got2,
          largestRecv: Math.max(0, ...split.sizes),
          rcvbuf,
          headerRecv,
          headerBytes: header.length,
          announced,
          seedLost,
          seedStored: stored,
          seedMissing,
          seedCorrupt: storedBytes.equals(file) ? 0 : 1,
          framedFrames: frames.length,
          framedBytes,
          framedRecvs: framedRead.sizes.length,
          framedLost: framedExact ? 0 : file.length - framedBytes,
        },
      });
    });
  },

  conclude(traces, p): string[] {
    const lines = describeGroups(traces, (t) => {
      const c = t.summary.counts;
      return `${c.sends1} sends arrived in ${c.recvs1} recv; 1 send of ${p.bytes} bytes arrived in ${c.recvs2} recvs of at most ` +
        `${c.largestRecv} bytes (SO_RCVBUF ${c.rcvbuf}); the seed's header recv returned ${c.headerRecv} bytes for a ` +
        `${c.headerBytes}-byte header, swallowing ${c.seedLost} bytes of the file; the framed reader got ${c.framedFrames} ` +
        `frame of ${c.framedBytes} bytes`;
    });
    const first = traces.find((t) => !t.summary.error);
    if (first) {
      const c = first.summary.counts;
      lines.push(`A recv returns what has arrived, not what one send sent: message boundaries do not exist in TCP. The ` +
        `seed's reader parsed the size right (${c.announced}) but stored ${c.seedStored} bytes and waited for ${c.seedMissing} ` +
        `that had already been swallowed with the header. A length prefix (or a delimiter) is the fix: it says where each ` +
        `message ends, whatever the reads.`);
      if (traces.every((t) => t.summary.counts.recvs1 === c.recvs1 && t.summary.counts.seedLost === c.seedLost)) {
        lines.push('The counts are the same under every mechanism: this is TCP, not readiness.');
      }
    }
    return lines;
  },
};
