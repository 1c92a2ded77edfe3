/**
 * short-read: may an edge-triggered reader stop at a short read (recv returned less than it asked for)
 * instead of reading on until EAGAIN? It saves one recv per wake-up; the fear is that something it did
 * not read then gets no edge of its own. The reader here stops at a short read unless the event also
 * said RDHUP, HUP, ERR or PRI (then it reads on until EAGAIN or the end), and each case is a fresh
 * connection on which the peer does one thing at one moment:
 *
 * - data+FIN: data and the FIN in one segment (TCP_CORK, send, shutdown), before the wait;
 * - FIN after: the FIN comes after the short read; FIN between: after the wait, before the recv;
 * - data after / data between: the same with more data instead of the FIN;
 * - RST / RST after: the peer closes with input unread (TCP sends a reset; a Unix socket reports
 *   ECONNRESET), before the wait or after the short read;
 * - urgent (TCP): data, one urgent byte (MSG_OOB), data, before the wait: recv stops at the urgent mark;
 * - burst: another thread sends many small messages, then its FIN, while this one reads.
 *
 * A case misses something when a wait reports nothing while bytes or the peer's end are still unread.
 * --drain runs the usual reader (until EAGAIN) for comparison.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { binding, constants } from '../../../lib/native';
import { isSystemError } from '../../../lib/errors';
import type { EventName, LabParams, MechanismName, Scenario, Trace, Variant } from '../model';
import { inSession, type Session } from '../session';
import { closeAll, openPair, openUnixPair, type LoopbackPair } from '../sockets';
import { FINISHED, STARTED, type BurstData } from '../burst-worker';
import { describeGroups, plural } from '../conclusions';

const WORKER_SCRIPT = path.join(__dirname, '..', 'burst-worker.js');
/** What the reader asks of each recv; every message here is smaller, so every read of it is short. */
export const READ_SIZE = 4096;
const MESSAGE = 100;
/** Events after which the reader reads on: the event says more than "data arrived". */
const READ_ON: readonly EventName[] = ['RDHUP', 'HUP', 'ERR', 'PRI'];
/** A sender thread that has not finished by then has failed. */
const BURST_LIMIT_MS = 20000;

type CaseName = 'dataFin' | 'finAfter' | 'finBetween' | 'dataAfter' | 'dataBetween' | 'rst' | 'rstAfter' | 'urgent' | 'burst';

const CASES: ReadonlyArray<{ key: CaseName; label: string }> = [
  { key: 'dataFin', label: 'data+FIN' },
  { key: 'finAfter', label: 'FIN after' },
  { key: 'finBetween', label: 'FIN between' },
  { key: 'dataAfter', label: 'data after' },
  { key: 'dataBetween', label: 'data between' },
  { key: 'rst', label: 'RST' },
  { key: 'rstAfter', label: 'RST after' },
  { key: 'urgent', label: 'urgent' },
  { key: 'burst', label: 'burst' },
];

/** One connection's reader: what it has read, and whether it has seen the end (0 or an error). */
class Reader {
  read = 0;
  ended = false;
  error: string | null = null;
  recvs = 0;
  /** Wake-ups whose first recv found nothing (the data had been read already). */
  empty = 0;

  constructor(private readonly s: Session, readonly fd: number, private readonly drain: boolean) {}

  /** The handler: recv until EAGAIN or the end, or (unless --drain) until a short read of a plain IN. */
  handle(events: EventName[]): { action: string; bytes: number } {
    const readOn = this.drain || events.some((e) => READ_ON.includes(e));
    let bytes = 0;
    let calls = 0;
    let stop = 'EAGAIN';
    for (;;) {
      let n: number;
      try {
        n = binding.recv(this.fd, this.s.scratch, 0, READ_SIZE);
      } catch (err) {
        if (!isSystemError(err)) throw err;
        this.s.record({ op: 'recv', result: -1, error: err.code });
        calls++;
        this.error = err.code;
        this.ended = true;
        stop = err.code;
        break;
      }
      this.s.record({ op: 'recv', result: n });
      calls++;
      if (n < 0) break;
      if (n === 0) {
        this.ended = true;
        stop = 'end of stream';
        break;
      }
      bytes += n;
      if (n < READ_SIZE && !readOn) {
        stop = 'a short read: stops';
        break;
      }
    }
    this.recvs += calls;
    this.read += bytes;
    if (calls === 1 && bytes === 0 && !this.ended) this.empty++;
    return { action: `${plural(calls, 'recv')} → ${bytes} bytes, then ${stop}`, bytes };
  }
}

export const shortRead: Scenario = {
  name: 'short-read',
  title: 'may an edge-triggered reader stop at a short read? data+FIN, late FINs, resets, urgent data and bursts',
  defaults: { messages: 50, chunk: 10, drain: false },
  columns: [
    ...CASES.map(({ key, label }) => ({ key, label })),
    { key: 'missed', label: 'cases missed' },
    { key: 'recvsPerMessage', label: 'burst recv/msg' },
  ],

  variants(mechanisms: MechanismName[]): Variant[] {
    const plain = (mechanism: MechanismName, more: Partial<Variant> = {}): Variant => ({ mechanism, rdhup: false, exclusive: false, ...more });
    const variants: Variant[] = [];
    if (mechanisms.includes('epoll-et')) {
      variants.push(plain('epoll-et'), plain('epoll-et', { rdhup: true }), plain('epoll-et', { rdhup: true, pri: true }));
    }
    if (mechanisms.includes('io_uring')) variants.push(plain('io_uring'), plain('io_uring', { pri: true }));
    if (mechanisms.includes('epoll-et')) variants.push(plain('epoll-et', { unix: true }), plain('epoll-et', { rdhup: true, unix: true }));
    if (mechanisms.includes('io_uring')) variants.push(plain('io_uring', { unix: true }));
    return variants;
  },

  setup(p: LabParams): string {
    return `Edge-triggered epoll and io_uring's multishot poll only (level-triggered mechanisms report unread data again ` +
      `anyway). Each case is a fresh connection (loopback TCP, or a Unix stream socketpair for the lanes marked unix) ` +
      `and the peer sends ${MESSAGE}-byte messages. The reader asks recv for ${READ_SIZE} bytes and ` +
      (p.drain ? 'reads until EAGAIN or the end (--drain), as usual.'
        : 'stops at a short read unless the event also said RDHUP, HUP, ERR or PRI (then it reads on until EAGAIN or the end).') +
      ' Cases: data+FIN in one segment before the wait; the FIN (or more data) after the short read, or between ' +
      'the wait and the recv; the peer closing with input unread (a reset) before the wait or after the short read; ' +
      `an urgent byte (MSG_OOB) between two messages (TCP); a burst of ${p.messages} ${p.chunk}-byte messages from ` +
      `another thread, then its FIN. A case missed something if a wait reports nothing for ${p.stallMs} ms while ` +
      'bytes or the peer\'s end are still unread. Variants: +rdhup asks for EPOLLRDHUP, +pri for EPOLLPRI / POLLPRI ' +
      '(io_uring reports RDHUP without being asked).';
  },

  run(variant, p): Promise<Trace> {
    return inSession(variant, async (s) => {
      const outcomes: Record<string, string> = {};
      let missed = 0;
      let burstRecvs = 0;
      let burstEmpty = 0;
      for (const { key, label } of CASES) {
        if (key === 'urgent' && variant.unix) {
          outcomes[key] = '-';
          continue;
        }
        const result = key === 'burst' ? await runBurst(s, p, label) : runCase(s, p, key, label);
        outcomes[key] = result.outcome;
        if (result.outcome !== 'ok') missed++;
        if (key === 'burst') {
          burstRecvs = result.reader.recvs;
          burstEmpty = result.reader.empty;
        }
      }
      const sent = p.messages * p.chunk;
      const priWakeups = s.timeline.rows.filter((r) => r.kind === 'wake' && r.events.includes('PRI')).length;
      return s.finish({
        bytesRead: 0,
        bytesLeft: 0,
        stalled: missed > 0,
        counts: {
          ...outcomes,
          missed,
          burstMessages: p.messages,
          burstBytes: sent,
          burstRecvs,
          burstEmptyWakeups: burstEmpty,
          priWakeups,
          recvsPerMessage: Math.round((burstRecvs / p.messages) * 100) / 100,
        },
      });
    });
  },

  conclude(traces, p): string[] {
    const lines = describeGroups(traces, (t) => {
      const c = t.summary.counts;
      const bad = CASES.filter(({ key }) => c[key] !== 'ok' && c[key] !== '-').map(({ key, label }) => `${label}: ${c[key]}`);
      return bad.length ? `missed in ${plural(bad.length, 'case')} (${bad.join('; ')})` : 'missed nothing in any case';
    });
    const find = (label: string): Trace | undefined => traces.find((t) => t.label === label && !t.summary.error);
    const et = find('epoll-et');
    const rdhup = find('epoll-et+rdhup');
    const safe = find('epoll-et+rdhup+pri');
    if (!p.drain && et && et.summary.counts.dataFin !== 'ok') {
      lines.push('Without EPOLLRDHUP, data and a FIN that arrive together are one edge reported as plain IN: the short read ' +
        'consumes the data, nothing reports the FIN again, and the connection hangs half-closed.');
    }
    if (!p.drain && rdhup && rdhup.summary.counts.urgent !== 'ok') {
      lines.push('recv stops at TCP\'s urgent mark: a peer\'s MSG_OOB makes a short read with data still queued behind it, ' +
        'and the wake-up said only IN unless EPOLLPRI was asked for.');
    }
    if (!p.drain && safe && Number(safe.summary.counts.missed) === 0) {
      lines.push('Every arrival after the wait (a FIN, a reset, more data, between the wait and the recv or after it) ' +
        'made a new edge; so with RDHUP and PRI asked for, and the reader going on whenever the event carries RDHUP, HUP, ' +
        'ERR or PRI, the short-read stop missed nothing here.');
    }
    const epollPri = find('epoll-et+rdhup+pri');
    const uringPri = find('io_uring+pri');
    if (epollPri && uringPri && Number(uringPri.summary.counts.priWakeups) > Number(epollPri.summary.counts.priWakeups)) {
      lines.push(`PRI came with ${epollPri.summary.counts.priWakeups} wake-up(s) under epoll (the urgent case) but with ` +
        `${uringPri.summary.counts.priWakeups} under io_uring: a multishot poll reports the wake-up's own mask, and every ` +
        'data arrival wakes with IN|PRI, so on io_uring asking for POLLPRI makes every event look urgent and the reader ' +
        'reads on every time: safe, but nothing saved.');
    }
    const burst = traces.filter((t) => !t.summary.error && t.summary.counts.burst === 'ok');
    if (burst.length) {
      const per = burst.map((t) => Number(t.summary.counts.recvsPerMessage));
      lines.push(`In the burst the reader made ${Math.min(...per)}–${Math.max(...per)} recv calls per message ` +
        `(${p.messages} messages of ${p.chunk} bytes from another thread).`);
    }
    return lines;
  },
};

interface CaseResult {
  outcome: string;
  reader: Reader;
}

/** One scripted case on a fresh connection. */
function runCase(s: Session, p: LabParams, key: CaseName, label: string): CaseResult {
  const pair = openConnection(s);
  let peerOpen = true;
  const message = Buffer.alloc(MESSAGE, 0x61);
  const reader = new Reader(s, pair.local, p.drain);
  let sent = 0;
  // The picture names each case at its first step (and leaves the case's other steps to their tooltips).
  let named = false;
  const mark = (): string | undefined => {
    const name = named ? undefined : label;
    named = true;
    return name;
  };
  const send = (): void => {
    sent += Math.max(0, binding.send(pair.peer, message));
    s.timeline.step(`${label}: peer sends ${MESSAGE} bytes`, pair.peer, MESSAGE, mark());
  };
  const fin = (): void => {
    binding.shutdown(pair.peer, constants.SHUT_WR);
    s.timeline.step(`${label}: peer shutdown(SHUT_WR): its FIN`, pair.peer, null, mark());
  };
  const reset = (): void => {
    // The peer closes with input it never read: TCP answers with a reset, a Unix socket with ECONNRESET.
    binding.close(pair.peer);
    peerOpen = false;
    s.timeline.step(`${label}: peer closes with unread input (reset)`, null, null, mark());
  };
  /** One wait whose handler first lets the peer act (between the wait and the recv). */
  const waitThen = (between?: () => void): boolean => s.react(p.stallMs, (r) => {
    between?.();
    return reader.handle(r.events);
  }) > 0;
  try {
    s.watch(pair.local, { read: true });
    if (key === 'rst' || key === 'rstAfter') {
      binding.send(pair.local, Buffer.from('?')); // Input the peer never reads.
    }
    switch (key) {
      case 'dataFin':
        if (!s.variant.unix) binding.setsockopt(pair.peer, constants.IPPROTO_TCP, need(constants.TCP_CORK), true);
        sent += Math.max(0, binding.send(pair.peer, message));
        binding.shutdown(pair.peer, constants.SHUT_WR);
        s.timeline.step(`${label}: peer sends ${MESSAGE} bytes and its FIN together${s.variant.unix ? '' : ' (one segment: TCP_CORK)'}`,
          pair.peer, MESSAGE, mark());
        break;
      case 'finAfter':
      case 'dataAfter':
      case 'rstAfter':
        send();
        waitThen();
        if (key === 'finAfter') fin();
        else if (key === 'dataAfter') send();
        else reset();
        break;
      case 'finBetween':
      case 'dataBetween':
        send();
        waitThen(() => {
          if (key === 'finBetween') fin();
          else send();
        });
        break;
      case 'rst':
        send();
        reset();
        break;
      case 'urgent':
        sent += Math.max(0, binding.send(pair.peer, message));
        binding.send(pair.peer, Buffer.from('!'), 0, 1, constants.MSG_OOB); // Out of band: not part of what recv reads.
        sent += Math.max(0, binding.send(pair.peer, message));
        s.timeline.step(`${label}: peer sends ${MESSAGE} bytes, 1 urgent byte (MSG_OOB), ${MESSAGE} bytes`, pair.peer, 2 * MESSAGE, mark());
        break;
    }
    const expectEnd = key !== 'dataAfter' && key !== 'dataBetween' && key !== 'urgent';
    return { outcome: settle(s, p, reader, label, sent, expectEnd), reader };
  } finally {
    s.watcher.remove(pair.local);
    closeAll(pair.local, peerOpen ? pair.peer : null);
  }
}

/** Waits until a wait reports nothing; then says what, if anything, was left unseen. */
function settle(s: Session, p: LabParams, reader: Reader, label: string, sent: number, expectEnd: boolean): string {
  while (s.react(p.stallMs, (r) => reader.handle(r.events)) > 0) { /* until a wait reports nothing */ }
  const left = sent - reader.read;
  const endMissed = expectEnd && !reader.ended;
  if (left === 0 && !endMissed) {
    s.timeline.quiet(p.stallMs, `${label}: everything read${reader.ended ? `, the end seen${reader.error ? ` (${reader.error})` : ''}` : ''}`);
    return 'ok';
  }
  const what = [left > 0 ? `${left} B` : '', endMissed ? (label.startsWith('RST') ? 'reset' : 'FIN') : ''].filter(Boolean).join(' + ');
  s.timeline.stall(p.stallMs, `${label}: ${what} unread`, left);
  return `${what} unseen`;
}

/** Another thread sends many small messages, then its FIN; this one reads as they land. */
async function runBurst(s: Session, p: LabParams, label: string): Promise<CaseResult> {
  const pair = openConnection(s);
  const reader = new Reader(s, pair.local, p.drain);
  const state = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
  let worker: Worker | null = null;
  try {
    s.watch(pair.local, { read: true });
    const data: BurstData = { fd: pair.peer, messages: p.messages, size: p.chunk, state: state.buffer as SharedArrayBuffer };
    worker = new Worker(WORKER_SCRIPT, { workerData: data });
    const failed = new Promise<Error>((resolve) => worker?.once('error', resolve));
    if (Atomics.wait(state, STARTED, 0, BURST_LIMIT_MS) === 'timed-out') throw new Error('short-read: the sender thread did not start');
    s.timeline.step(`${label}: another thread sends ${p.messages} messages of ${p.chunk} bytes, then its FIN`, pair.peer,
      p.messages * p.chunk, `${label}: ${p.messages} × ${p.chunk}`);
    const deadline = Date.now() + BURST_LIMIT_MS;
    // While the sender is still sending, a quiet wait is only a slow sender; after its FIN it is a miss.
    while (!reader.ended) {
      const finished = Atomics.load(state, FINISHED) === 1;
      if (s.react(p.stallMs, (r) => reader.handle(r.events)) > 0) continue;
      if (finished) break;
      if (Date.now() > deadline) throw new Error('short-read: the sender thread did not finish');
    }
    const outcome = settle(s, p, reader, label, p.messages * p.chunk, true);
    const exited = new Promise<void>((resolve) => worker?.once('exit', () => resolve()));
    const error = await Promise.race([failed, exited]);
    if (error instanceof Error) throw error;
    return { outcome, reader };
  } finally {
    await worker?.terminate();
    s.watcher.remove(pair.local);
    closeAll(pair.local, pair.peer);
  }
}

function openConnection(s: Session): LoopbackPair {
  const pair = s.variant.unix ? openUnixPair() : openPair();
  s.descriptors.watched = pair.local;
  s.descriptors.peer = pair.peer;
  return pair;
}

function need(value: number | undefined): number {
  if (value === undefined) throw new Error('TCP_CORK is not available on this platform');
  return value;
}
