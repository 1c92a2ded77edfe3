import * as assert from 'node:assert/strict';
import type { Report } from '../tools/lab/model';
import { MECHANISMS, unavailableReason } from '../tools/lab/mechanisms';
import { runChecked, summary } from './lab-helpers';

describe('lab: accept-storm (50 connections queued before the first wait)', () => {
  let onePerWake: Report;
  let drained: Report;

  before(async () => {
    onePerWake = await runChecked('accept-storm', { connections: 50 });
    drained = await runChecked('accept-storm', { connections: 50, drain: true });
  });

  for (const label of ['select', 'poll', 'epoll-lt']) {
    it(`${label} (level-triggered), one accept per wake-up: 50 wake-ups accept all 50`, () => {
      const s = summary(onePerWake, label);
      assert.equal(s.wakeups, 50);
      assert.equal(s.counts.accepted, 50);
      assert.equal(s.stalled, false);
    });
  }

  for (const label of ['epoll-et', 'epoll-oneshot']) {
    it(`${label}, one accept per wake-up: accepts fewer than 50 and stalls with the rest queued`, () => {
      const s = summary(onePerWake, label);
      assert.ok(Number(s.counts.accepted) < 50);
      assert.equal(s.stalled, true);
      // All 50 arrived before the first wait, so there was a single edge.
      assert.equal(s.counts.accepted, 1);
      assert.equal(s.counts.queued, 49);
    });
  }

  it('--drain (accept until EAGAIN): every mechanism accepts all 50 in one wake-up', () => {
    assert.equal(drained.traces.length, MECHANISMS.filter((m) => unavailableReason(m) === null).length);
    for (const t of drained.traces) {
      assert.equal(t.summary.counts.accepted, 50, t.label);
      assert.equal(t.summary.wakeups, 1, t.label);
    }
  });
});
