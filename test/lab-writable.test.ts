import * as assert from 'node:assert/strict';
import type { Report } from '../tools/lab/model';
import { runChecked, summary } from './lab-helpers';

describe('lab: writable (write interest left on; 3 idle waits, then 2 fill/drain cycles of 3 waits)', () => {
  let report: Report;

  before(async () => {
    report = await runChecked('writable', { waits: 3, cycles: 2 });
  });

  for (const label of ['select', 'poll', 'epoll-lt']) {
    it(`${label} (level-triggered): writable on every wait while there is room (a busy loop)`, () => {
      const s = summary(report, label);
      assert.equal(s.counts.idle, 3);
      assert.equal(s.counts.afterDrain, 6);
    });
  }

  it('edge-triggered: once at registration, then once per full-to-not-full cycle', () => {
    const s = summary(report, 'epoll-et');
    assert.equal(s.counts.idle, 1);
    assert.equal(s.counts.afterDrain, 2);
  });

  it('one-shot: once at registration, then never (nothing re-arms it)', () => {
    const s = summary(report, 'epoll-oneshot');
    assert.equal(s.wakeups, 1);
    assert.equal(s.counts.idle, 1);
  });

  it('the peer receives every byte the handler sent, cycle after cycle', () => {
    for (const t of report.traces) {
      const sent = t.rows.filter((r) => r.fd === t.descriptors.watched && r.bytes).reduce((a, r) => a + (r.bytes ?? 0), 0);
      const received = t.rows.filter((r) => r.fd === t.descriptors.peer).reduce((a, r) => a + (r.bytes ?? 0), 0);
      assert.ok(sent > 0);
      assert.equal(received, sent, t.label);
      assert.equal(t.summary.counts.bytesSent, sent);
    }
  });
});
