/**
 * thundering-herd: W worker threads, each with its own watcher, on one listening socket. Connections
 * arrive one at a time; the lab counts how many workers each one wakes. Without EPOLLEXCLUSIVE every
 * watcher is woken (and all but one find nothing to accept); with it the kernel wakes one (or a few).
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { binding } from '../../../lib/native';
import type { LabParams, MechanismName, Row, Scenario, Trace, Variant } from '../model';
import { describeRegistration, variantLabel } from '../mechanisms';
import {
  ACCEPTED, ACCEPTING, CONTROL_SLOTS, DONE, IN_WAIT, PHASE, ROUND, STOP, WATCHING, WOKEN, bump, waitUntil,
  type HerdMessage, type HerdWorkerData,
} from '../herd-protocol';
import { Timeline } from '../timeline';
import { closeAll, connectLoopback, openListener } from '../sockets';
import { describeGroups } from '../conclusions';

const WORKER_SCRIPT = path.join(__dirname, '..', 'herd-worker.js');
/** Generous bounds for steps that normally take microseconds, so a loaded machine only slows the run. */
const STARTUP_MS = 10000;
const STEP_MS = 2000;

export const thunderingHerd: Scenario = {
  name: 'thundering-herd',
  title: 'several threads wait on one listening socket: how many wake per connection, with and without EPOLLEXCLUSIVE?',
  defaults: { workers: 4, connections: 12, settleMs: 20 },
  columns: [
    { key: 'wakeups', label: 'wake-ups' },
    { key: 'perConnection', label: 'per connection' },
    { key: 'forNothing', label: 'woken for nothing' },
    { key: 'byWorker', label: 'wake-ups by worker' },
  ],

  variants(mechanisms: MechanismName[]): Variant[] {
    return mechanisms.flatMap((mechanism) => {
      const plain: Variant = { mechanism, rdhup: false, exclusive: false };
      return mechanism.startsWith('epoll') ? [plain, { ...plain, exclusive: true }] : [plain];
    });
  },

  setup(p: LabParams): string {
    return `${p.workers} worker threads each open their own watcher on one shared listening socket. ${p.connections} ` +
      'clients connect one at a time, each once every worker is back in its wait. A woken worker waits until ' +
      `no more workers wake (all ${p.workers}, or ${p.settleMs} ms after the first), then tries one accept: one ` +
      'gets the connection, the others get EAGAIN. Variants marked +exclusive register with EPOLLEXCLUSIVE.';
  },

  run(variant, p): Promise<Trace> {
    return runHerd(variant, p);
  },

  conclude(traces, p): string[] {
    const lines = describeGroups(traces, (t) =>
      `${t.summary.counts.perConnection} wake-ups per connection, ${t.summary.counts.forNothing} of ` +
      `${t.summary.wakeups} for nothing`);
    const plain = traces.filter((t) => !t.variant.exclusive && !t.summary.error);
    const exclusive = traces.filter((t) => t.variant.exclusive && !t.summary.error);
    if (plain.length && exclusive.length) {
      const avg = (ts: Trace[]): number => ts.reduce((a, t) => a + Number(t.summary.counts.perConnection), 0) / ts.length;
      lines.push(`Without EPOLLEXCLUSIVE each connection woke ${avg(plain).toFixed(2)} of ${p.workers} workers on ` +
        `average; with it, ${avg(exclusive).toFixed(2)}.`);
    }
    const lopsided = exclusive.filter((t) => String(t.summary.counts.byWorker).split('/').filter((n) => n !== '0').length === 1);
    if (lopsided.length && p.workers > 1) {
      lines.push(`${lopsided.map((t) => t.label).join(', ')}: one worker took every connection. EPOLLEXCLUSIVE ` +
        'avoids waking the herd but does not spread the load: the kernel wakes the first waiting watcher it finds.');
    }
    return lines;
  },
};

async function runHerd(variant: Variant, p: LabParams): Promise<Trace> {
  const timeline = new Timeline();
  const listener = openListener(p.connections + p.workers);
  const control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT));
  const workers: Worker[] = [];
  const exits: Array<Promise<void>> = [];
  const inbox: HerdMessage[][] = [];
  let failWith: (err: unknown) => void = () => {};
  const failure = new Promise<never>((_, reject) => { failWith = reject; });
  failure.catch(() => {}); // Observed through until(); never left unhandled.
  const trace = (rows: Row[], summary: Trace['summary']): Trace => ({
    label: variantLabel(variant),
    variant,
    registration: `${describeRegistration(variant, listener.fd, { read: true })}, once per worker`,
    descriptors: { listener: listener.fd },
    rows,
    summary,
  });
  try {
    for (let w = 1; w <= p.workers; w++) {
      const data: HerdWorkerData = {
        listenFd: listener.fd, variant, worker: w, origin: String(timeline.origin), control: control.buffer as SharedArrayBuffer,
        sliceMs: 20, idleLimitMs: STARTUP_MS,
      };
      const worker = new Worker(WORKER_SCRIPT, { workerData: data });
      const messages: HerdMessage[] = [];
      inbox.push(messages);
      worker.on('message', (m: HerdMessage) => messages.push(m));
      worker.once('error', failWith);
      exits.push(new Promise((resolve) => worker.once('exit', () => resolve())));
      workers.push(worker);
    }
    await until(() => inbox.every((m) => m.some((x) => x.type !== 'finished')), STARTUP_MS, failure);
    const refused = inbox.flat().find((m): m is Extract<HerdMessage, { type: 'refused' }> => m.type === 'refused');
    if (refused) {
      bump(control, STOP);
      await Promise.all(exits);
      return trace([], { wakeups: 0, bytesRead: 0, bytesLeft: 0, stalled: false, counts: {}, error: refused.message });
    }
    timeline.step(`${p.workers} workers started, each watching the listener with its own ${variant.mechanism}`, listener.fd, null, `${p.workers} workers`);

    for (let c = 1; c <= p.connections; c++) {
      if (!waitUntil(control, IN_WAIT, () => Atomics.load(control, IN_WAIT) === p.workers, STEP_MS)) {
        throw new Error('thundering-herd: the workers did not get back to their waits');
      }
      sleep(2); // Let the last worker go from counting itself in to blocking in the kernel.
      const woken0 = Atomics.load(control, WOKEN);
      const accepted0 = Atomics.load(control, ACCEPTED);
      const done0 = Atomics.load(control, DONE);
      timeline.step(`connection ${c} of ${p.connections} arrives`, listener.fd, null, `conn ${c}`);
      const client = connectLoopback(listener.port);
      try {
        const woken = (): number => Atomics.load(control, WOKEN) - woken0;
        waitUntil(control, WOKEN, () => woken() > 0, STEP_MS);
        waitUntil(control, WOKEN, () => woken() >= p.workers, p.settleMs);
        Atomics.store(control, PHASE, ACCEPTING);
        Atomics.notify(control, PHASE);
        waitUntil(control, DONE, () => Atomics.load(control, DONE) - done0 >= woken(), STEP_MS);
        if (Atomics.load(control, ACCEPTED) === accepted0) {
          const fd = binding.accept(listener.fd, true);
          closeAll(fd);
          timeline.step(`no worker accepted connection ${c}; the main thread ${fd >= 0 ? 'did' : 'found none'}`);
        }
      } finally {
        closeAll(client);
      }
      Atomics.store(control, PHASE, WATCHING);
      bump(control, ROUND);
    }
    bump(control, STOP);
    await until(() => inbox.every((m) => m.some((x) => x.type === 'finished')), STEP_MS, failure);
    const rows = [...timeline.rows];
    for (const messages of inbox) {
      for (const m of messages) if (m.type === 'finished') rows.push(...m.rows);
    }
    rows.sort((a, b) => a.t - b.t);
    const wakes = rows.filter((r) => r.kind === 'wake');
    const byWorker = Array.from({ length: p.workers }, (_, i) => wakes.filter((r) => r.worker === i + 1).length);
    return trace(rows, {
      wakeups: wakes.length,
      bytesRead: 0,
      bytesLeft: 0,
      stalled: false,
      counts: {
        perConnection: (wakes.length / p.connections).toFixed(2),
        forNothing: wakes.filter((r) => r.bytes === 0).length,
        byWorker: byWorker.join('/'),
      },
    });
  } finally {
    bump(control, STOP);
    await Promise.allSettled(exits);
    for (const worker of workers) await worker.terminate();
    closeAll(listener.fd);
  }
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Lets the event loop deliver worker messages until `done()`, a worker fails, or the time is up. */
async function until(done: () => boolean, timeoutMs: number, failure: Promise<never>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('thundering-herd: the workers did not answer in time');
    await Promise.race([new Promise((resolve) => setTimeout(resolve, 5)), failure]);
  }
}
