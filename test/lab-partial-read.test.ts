import * as assert from 'node:assert/strict';
import type { Report } from '../tools/lab/model';
import { runChecked, summary, trace } from './lab-helpers';

describe('lab: partial-read (10 KiB sent at once, 1 KiB read per wake-up)', () => {
  let plain: Report;
  let drained: Report;
  let rearmed: Report;

  before(async () => {
    plain = await runChecked('partial-read', { bytes: 10240, chunk: 1024 });
    drained = await runChecked('partial-read', { bytes: 10240, chunk: 1024, drain: true }, ['epoll-et', 'epoll-oneshot']);
    rearmed = await runChecked('partial-read', { bytes: 10240, chunk: 1024, rearm: true }, ['epoll-et', 'epoll-oneshot']);
  });

  for (const label of ['select', 'poll', 'epoll-lt']) {
    it(`${label} (level-triggered): 10 wake-ups, all 10240 bytes read, no stall`, () => {
      assert.deepEqual(summary(plain, label), {
        wakeups: 10, bytesRead: 10240, bytesLeft: 0, stalled: false, counts: { sent: 10240 },
      });
    });
  }

  for (const label of ['epoll-et', 'epoll-oneshot']) {
    it(`${label}: 1 wake-up, then a stall with 9216 bytes unread`, () => {
      const s = summary(plain, label);
      assert.equal(s.wakeups, 1);
      assert.equal(s.bytesRead, 1024);
      assert.equal(s.bytesLeft, 9216);
      assert.equal(s.stalled, true);
      const last = trace(plain, label).rows.at(-1);
      assert.equal(last?.kind, 'stall');
      assert.match(last?.action ?? '', /STALLED with 9216 bytes unread/);
    });

    it(`${label} with --drain: 1 wake-up reads all 10240 bytes in 11 recv calls (the 11th says EAGAIN)`, () => {
      const t = trace(drained, label);
      assert.equal(t.summary.wakeups, 1);
      assert.equal(t.summary.bytesLeft, 0);
      assert.equal(t.summary.stalled, false);
      const wake = t.rows.find((r) => r.kind === 'wake');
      assert.equal(wake?.bytes, 10240);
      assert.match(wake?.action ?? '', /11 calls/);
    });

    it(`${label} with --rearm: EPOLL_CTL_MOD re-reports the unread data, so 10 wake-ups drain it`, () => {
      assert.equal(summary(rearmed, label).wakeups, 10);
      assert.equal(summary(rearmed, label).bytesLeft, 0);
    });
  }

  it('every wake-up row reports IN on the watched descriptor', () => {
    for (const t of plain.traces) {
      for (const row of t.rows.filter((r) => r.kind === 'wake')) {
        assert.deepEqual(row.events, ['IN']);
        assert.equal(row.fd, t.descriptors.watched);
      }
    }
  });
});
