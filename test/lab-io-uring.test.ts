/**
 * The readiness lab's io_uring column: what a multishot IORING_OP_POLL_ADD reports in each scenario
 * that makes sense for it, and when the kernel ends one. These are the kernel's answers on the
 * machine the suite runs on (written down in docs/readiness-lab.md for Linux 6.18).
 */
import * as assert from 'node:assert/strict';
import type { Report } from '../tools/lab/model';
import { unavailableReason } from '../tools/lab/mechanisms';
import { runChecked, summary, trace } from './lab-helpers';
import { skipUnless } from './skip';

describe('lab: io_uring (multishot POLL_ADD) beside epoll', function () {
  before(function () {
    // Linux with io_uring allowed for this process only (a seccomp profile or kernel.io_uring_disabled refuse it).
    const refused = unavailableReason('io_uring');
    skipUnless(this, refused === null, refused!);
  });

  describe('partial-read: 10 KiB sent at once, 1 KiB read per wake-up', () => {
    let report: Report;
    before(async () => {
      report = await runChecked('partial-read', { bytes: 10240, chunk: 1024 }, ['epoll-et', 'io_uring']);
    });

    it('edge-like, as epoll-et: 1 wake-up, then nothing more for the 9216 bytes left unread', () => {
      assert.deepEqual(summary(report, 'io_uring'), summary(report, 'epoll-et'));
      assert.deepEqual(summary(report, 'io_uring'), {
        wakeups: 1, bytesRead: 1024, bytesLeft: 9216, stalled: true, counts: { sent: 10240 },
      });
      assert.deepEqual(trace(report, 'io_uring').rows.filter((r) => r.kind === 'wake').map((r) => r.events), [['IN']]);
    });

    it('with --drain one wake-up reads everything; with --rearm (a new POLL_ADD) 10 wake-ups do', async () => {
      const drained = await runChecked('partial-read', { bytes: 10240, chunk: 1024, drain: true }, ['io_uring']);
      assert.equal(summary(drained, 'io_uring').wakeups, 1);
      assert.equal(summary(drained, 'io_uring').bytesLeft, 0);
      const rearmed = await runChecked('partial-read', { bytes: 10240, chunk: 1024, rearm: true }, ['io_uring']);
      assert.equal(summary(rearmed, 'io_uring').wakeups, 10);
      assert.equal(summary(rearmed, 'io_uring').bytesLeft, 0);
    });
  });

  it('arrivals: a completion for every arrival (unread data or not), none for a wait with nothing new', async () => {
    const report = await runChecked('arrivals', { messages: 5, chunk: 1024 }, ['epoll-et', 'io_uring']);
    assert.deepEqual(summary(report, 'io_uring').counts, { afterArrival: 5, withoutArrival: 0 });
    assert.deepEqual(summary(report, 'io_uring'), summary(report, 'epoll-et'));
  });

  it('writable: once at registration, then once per full-to-not-full cycle (no busy loop)', async () => {
    const report = await runChecked('writable', { waits: 3, cycles: 2 }, ['epoll-et', 'io_uring']);
    const s = summary(report, 'io_uring');
    assert.equal(s.counts.idle, 1);
    assert.equal(s.counts.afterDrain, 2);
    // While filling, a report comes when the peer's kernel acknowledges data (a delayed ACK): that is TCP's timing,
    // not the mechanism's, and differs between runs on a busy machine. What matters is that it stops.
    assert.ok(Number(s.counts.whileFilling) < 20, `writable kept coming while the buffer was full: ${s.counts.whileFilling}`);
  });

  it('half-close: the FIN comes as IN|RDHUP even without POLLRDHUP, once; HUP only once both sides are shut', async () => {
    const report = await runChecked('half-close', { bytes: 5, waits: 2 }, ['io_uring']);
    for (const label of ['io_uring', 'io_uring+rdhup']) {
      const s = summary(report, label);
      assert.deepEqual([s.counts.atData, s.counts.atFin, s.counts.afterEof, s.counts.atClose],
        ['IN', 'IN|RDHUP', '0 of 2', 'IN|HUP|RDHUP'], label);
      assert.equal(s.wakeups, 3, label);
    }
  });

  describe('multishot-end: 8 sockets readable at once, a completion ring of 4', () => {
    let plain: Report;
    let rearmed: Report;
    before(async () => {
      plain = await runChecked('multishot-end', { connections: 8 }, ['epoll-et', 'io_uring']);
      rearmed = await runChecked('multishot-end', { connections: 8, rearm: true }, ['io_uring']);
    });

    it('the kernel posts 4 completions that go on and ends the other 4 polls (their last completion lacks IORING_CQE_F_MORE)', () => {
      const t = trace(plain, 'io_uring+cq4');
      const wakes = t.rows.filter((r) => r.kind === 'wake');
      const round1 = wakes.slice(0, 8).map((r) => r.events.join('|'));
      assert.deepEqual(round1, ['IN', 'IN', 'IN', 'IN', 'IN|END', 'IN|END', 'IN|END', 'IN|END']);
      assert.equal(t.summary.counts.ended, 4);
      assert.equal(t.summary.counts.firstRound, 8);
    });

    it('an ended poll reports nothing more: round 2 sees 4 of 8 sockets and leaves 4 bytes unread; epoll sees all 8', () => {
      assert.equal(summary(plain, 'io_uring+cq4').counts.secondRound, 4);
      assert.equal(summary(plain, 'io_uring+cq4').bytesLeft, 4);
      assert.equal(summary(plain, 'epoll-et').counts.secondRound, 8);
      assert.equal(summary(plain, 'epoll-et').counts.ended, 0);
    });

    it('arming a new poll on each ended one keeps all 8 watched (and the ring ends 4 again in round 2)', () => {
      const s = summary(rearmed, 'io_uring+cq4');
      assert.equal(s.counts.secondRound, 8);
      assert.equal(s.counts.ended, 8);
      assert.equal(s.counts.rearmed, 8);
      assert.equal(s.bytesLeft, 0);
    });
  });
});
