import * as assert from 'node:assert/strict';
import type { Report } from '../tools/lab/model';
import { runChecked, summary } from './lab-helpers';

describe('lab: arrivals (5 messages, never read, two waits after each)', () => {
  let report: Report;

  before(async () => {
    report = await runChecked('arrivals', { messages: 5, chunk: 1024 });
  });

  for (const label of ['select', 'poll', 'epoll-lt']) {
    it(`${label} (level-triggered): reports on every wait, with or without a new arrival`, () => {
      const s = summary(report, label);
      assert.equal(s.counts.afterArrival, 5);
      assert.equal(s.counts.withoutArrival, 5);
      assert.equal(s.wakeups, 10);
    });
  }

  it('edge-triggered: one wake-up per arrival, even while earlier data is still unread', () => {
    const s = summary(report, 'epoll-et');
    assert.equal(s.counts.afterArrival, 5, 'each arrival is an edge, not only empty → non-empty');
    assert.equal(s.counts.withoutArrival, 0);
    assert.equal(s.bytesLeft, 5 * 1024);
  });

  it('one-shot: the first arrival only; the later four arrive unreported', () => {
    const s = summary(report, 'epoll-oneshot');
    assert.equal(s.wakeups, 1);
    assert.equal(s.counts.afterArrival, 1);
    assert.equal(s.stalled, true);
  });
});
