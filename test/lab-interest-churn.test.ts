import * as assert from 'node:assert/strict';
import type { Report } from '../tools/lab/model';
import { runChecked, summary } from './lab-helpers';

describe('lab: interest-churn (the seed\'s strict separation, 20 messages)', () => {
  describe('one message in flight', () => {
    let report: Report;
    before(async () => {
      report = await runChecked('interest-churn', { messages: 20, depth: 1 });
    });

    for (const label of ['select', 'poll']) {
      it(`${label}: 2 wake-ups and 2 interest changes per message, and the changes cost no system call`, () => {
        const c = summary(report, label).counts;
        assert.equal(summary(report, label).wakeups, 40);
        assert.equal(c.changes, 40);
        assert.equal(c.syscalls, 0);
        assert.equal(c.reads, 20);
        assert.equal(c.writes, 20);
      });
    }

    it('epoll level-triggered: each of the 2 changes per message is an EPOLL_CTL_MOD', () => {
      const s = summary(report, 'epoll-lt');
      assert.equal(s.wakeups, 40);
      assert.equal(s.counts.syscalls, 40);
    });

    it('epoll level-triggered, batched: the round trip forces the same 2 per message (no change is undone within a turn)', () => {
      const s = summary(report, 'epoll-lt+batched');
      assert.equal(s.wakeups, 40);
      assert.equal(s.counts.changes, 40);
      assert.equal(s.counts.syscalls, 40);
      assert.ok(report.conclusions.some((l) => /Batching saved nothing/.test(l)));
    });

    it('epoll edge-triggered, IN|OUT once: 1 wake-up per message, no interest change, 2 recv (the second is EAGAIN)', () => {
      const s = summary(report, 'epoll-et');
      assert.equal(s.wakeups, 20);
      assert.equal(s.counts.changes, 0);
      assert.equal(s.counts.syscalls, 0);
      assert.equal(s.counts.reads, 40);
      assert.equal(s.counts.writes, 20);
      assert.equal(s.stalled, false);
    });
  });

  describe('two messages in flight', () => {
    let report: Report;
    before(async () => {
      report = await runChecked('interest-churn', { messages: 20, depth: 2 }, ['poll', 'epoll-lt', 'epoll-et']);
    });

    it('level-triggered: the pair of changes is shared by two messages; batched or not, epoll pays one MOD per message', () => {
      for (const label of ['poll', 'epoll-lt', 'epoll-lt+batched']) {
        const s = summary(report, label);
        assert.equal(s.wakeups, 20, label);
        assert.equal(s.counts.changes, 20, label);
        assert.equal(s.counts.reads, 10, label);
        assert.equal(s.counts.writes, 10, label);
      }
      assert.equal(summary(report, 'poll').counts.syscalls, 0);
      assert.equal(summary(report, 'epoll-lt').counts.syscalls, 20);
      assert.equal(summary(report, 'epoll-lt+batched').counts.syscalls, 20);
    });

    it('edge-triggered: one wake-up per two messages, still no interest change', () => {
      const s = summary(report, 'epoll-et');
      assert.equal(s.wakeups, 10);
      assert.equal(s.counts.syscalls, 0);
      assert.equal(s.counts.reads, 20);
    });
  });
});
