/**
 * short-read: may an edge-triggered reader stop at a short read? The kernel's answer, case by case,
 * on loopback TCP and Unix stream sockets (docs/readiness-lab.md, "short-read").
 */
import * as assert from 'node:assert/strict';
import type { Report } from '../tools/lab/model';
import { unavailableReason } from '../tools/lab/mechanisms';
import { runChecked, summary } from './lab-helpers';
import { skipUnless } from './skip';

const SCRIPTED = ['dataFin', 'finAfter', 'finBetween', 'dataAfter', 'dataBetween', 'rst', 'rstAfter'];
const uring = unavailableReason('io_uring') === null;

describe('lab: short-read (stop at a short read unless the event says RDHUP, HUP, ERR or PRI)', function () {
  this.timeout(60000);
  let report: Report;
  let drained: Report;

  before(async () => {
    report = await runChecked('short-read', { messages: 300 }, ['epoll-et', 'io_uring']);
    drained = await runChecked('short-read', { messages: 50, drain: true }, ['epoll-et']);
  });

  it('runs edge-triggered epoll (plain, +rdhup, +rdhup+pri) and io_uring (plain, +pri) on TCP, and on Unix sockets', () => {
    assert.deepEqual(report.traces.map((t) => t.label), [
      'epoll-et', 'epoll-et+rdhup', 'epoll-et+rdhup+pri', ...(uring ? ['io_uring', 'io_uring+pri'] : []),
      'epoll-et unix', 'epoll-et+rdhup unix', ...(uring ? ['io_uring unix'] : []),
    ]);
  });

  it('without EPOLLRDHUP, data and FIN in one arrival are one plain IN edge: the short read leaves the FIN unseen (TCP and Unix)', () => {
    for (const label of ['epoll-et', 'epoll-et unix']) {
      assert.equal(summary(report, label).counts.dataFin, 'FIN unseen', label);
    }
  });

  it('a FIN, a reset or more data after the short read, or between the wait and the recv, makes a new edge: nothing missed, even without RDHUP', () => {
    for (const t of report.traces) {
      for (const key of SCRIPTED.filter((k) => k !== 'dataFin')) assert.equal(t.summary.counts[key], 'ok', `${t.label} ${key}`);
    }
  });

  it('recv stops at TCP\'s urgent mark: without EPOLLPRI / POLLPRI the 100 bytes behind it are stranded; with it, read', () => {
    for (const label of ['epoll-et', 'epoll-et+rdhup', ...(uring ? ['io_uring'] : [])]) {
      assert.equal(summary(report, label).counts.urgent, '100 B unseen', label);
    }
    for (const label of ['epoll-et+rdhup+pri', ...(uring ? ['io_uring+pri'] : [])]) {
      assert.equal(summary(report, label).counts.urgent, 'ok', label);
    }
  });

  it('io_uring reports RDHUP without being asked: data+FIN is read to the end', function () {
    skipUnless(this, uring, `io_uring refused here: ${unavailableReason('io_uring')}`);
    assert.equal(summary(report, 'io_uring').counts.dataFin, 'ok');
    assert.equal(summary(report, 'io_uring unix').counts.dataFin, 'ok');
  });

  it('with RDHUP (and PRI on TCP) asked for, no case misses anything: all 300 burst messages and the FIN arrive', () => {
    for (const label of ['epoll-et+rdhup+pri', 'epoll-et+rdhup unix', ...(uring ? ['io_uring+pri', 'io_uring unix'] : [])]) {
      const s = summary(report, label);
      assert.equal(s.counts.missed, 0, label);
      assert.equal(s.counts.burst, 'ok', label);
      assert.equal(s.counts.burstBytes, 3000, label);
      assert.equal(s.stalled, false, label);
    }
  });

  it('PRI: epoll reports it only for the urgent byte; io_uring\'s multishot poll with POLLPRI reports it on every data arrival', function () {
    assert.equal(summary(report, 'epoll-et+rdhup+pri').counts.priWakeups, 1);
    skipUnless(this, uring, `io_uring refused here: ${unavailableReason('io_uring')}`);
    // FIN after, data after (twice) and RST after each bring one data arrival alone before a wait: its completion
    // carries that wake-up's mask, IN|PRI. (Arrivals that land together are polled afresh, without PRI.)
    assert.ok(Number(summary(report, 'io_uring+pri').counts.priWakeups) >= 4, String(summary(report, 'io_uring+pri').counts.priWakeups));
    assert.equal(summary(report, 'io_uring').counts.priWakeups, 0);
  });

  it('the reader that reads until EAGAIN misses nothing in any case, RDHUP or not', () => {
    for (const t of drained.traces) assert.equal(t.summary.counts.missed, 0, t.label);
  });
});
