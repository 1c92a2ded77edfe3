import * as assert from 'node:assert/strict';
import type { Report } from '../tools/lab/model';
import { runChecked, summary } from './lab-helpers';

describe('lab: oneshot-rearm (3 messages unarmed, one re-arm, 3 messages re-arming each time)', () => {
  let report: Report;

  before(async () => {
    report = await runChecked('oneshot-rearm', { messages: 3, chunk: 1024 });
  });

  it('EPOLLONESHOT: 1 wake-up for 3 messages until re-armed; 2048 bytes arrive unreported', () => {
    const s = summary(report, 'epoll-oneshot');
    assert.equal(s.counts.withoutRearm, 1);
    assert.equal(s.counts.leftUnseen, 2048);
  });

  it('EPOLL_CTL_MOD re-arms it and reports the waiting data at once', () => {
    const s = summary(report, 'epoll-oneshot');
    assert.equal(s.counts.onRearm, 1);
    const rearmWake = report.traces.find((t) => t.label === 'epoll-oneshot')?.rows
      .find((r, i, rows) => r.kind === 'wake' && rows[i - 1]?.action.startsWith('phase 2'));
    assert.equal(rearmWake?.bytes, 2048);
  });

  it('re-armed after every wake-up, one-shot reports every message and nothing is left', () => {
    const s = summary(report, 'epoll-oneshot');
    assert.equal(s.counts.rearmingEach, 3);
    assert.equal(s.bytesLeft, 0);
    assert.equal(s.wakeups, 5);
  });

  for (const label of ['select', 'poll', 'epoll-lt', 'epoll-et']) {
    it(`${label}: no arming, a wake-up for every message, nothing extra on the re-arm`, () => {
      const s = summary(report, label);
      assert.deepEqual([s.counts.withoutRearm, s.counts.onRearm, s.counts.rearmingEach], [3, 0, 3]);
    });
  }
});
