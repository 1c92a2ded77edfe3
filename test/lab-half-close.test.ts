import * as assert from 'node:assert/strict';
import type { Report } from '../tools/lab/model';
import { unavailableReason } from '../tools/lab/mechanisms';
import { runChecked, summary } from './lab-helpers';

describe('lab: half-close (peer sends 5 bytes, then shutdown(SHUT_WR); 2 more waits; then our own shutdown)', () => {
  let report: Report;

  before(async () => {
    report = await runChecked('half-close', { bytes: 5, waits: 2 });
  });

  it('runs select once and every other mechanism with and without RDHUP', () => {
    assert.deepEqual(report.traces.map((t) => t.label), [
      'select', 'poll', 'poll+rdhup', 'epoll-lt', 'epoll-lt+rdhup', 'epoll-et', 'epoll-et+rdhup',
      'epoll-oneshot', 'epoll-oneshot+rdhup',
      ...(unavailableReason('io_uring') === null ? ['io_uring', 'io_uring+rdhup'] : []),
    ]);
  });

  it('without RDHUP the FIN shows as plain IN; with it, as IN|RDHUP (poll and epoll)', () => {
    for (const m of ['poll', 'epoll-lt', 'epoll-et']) {
      assert.equal(summary(report, m).counts.atFin, 'IN', m);
      assert.equal(summary(report, `${m}+rdhup`).counts.atFin, 'IN|RDHUP', m);
    }
  });

  it('select shows data, FIN and full shutdown all as readable', () => {
    const s = summary(report, 'select');
    assert.deepEqual([s.counts.atData, s.counts.atFin, s.counts.atClose], ['IN', 'IN', 'IN']);
  });

  it('HUP arrives only once both directions are shut, not with the FIN', () => {
    assert.equal(summary(report, 'epoll-lt').counts.atClose, 'IN|HUP');
    assert.equal(summary(report, 'epoll-lt+rdhup').counts.atClose, 'IN|HUP|RDHUP');
    assert.equal(summary(report, 'poll').counts.atClose, 'IN|HUP');
    assert.equal(summary(report, 'epoll-et').counts.atClose, 'IN|HUP');
  });

  it('level-triggered re-reports end of stream on every wait; edge-triggered reports it once', () => {
    assert.equal(summary(report, 'epoll-lt').counts.afterEof, '2 of 2');
    assert.equal(summary(report, 'poll').counts.afterEof, '2 of 2');
    assert.equal(summary(report, 'select').counts.afterEof, '2 of 2');
    assert.equal(summary(report, 'epoll-et').counts.afterEof, '0 of 2');
    assert.equal(summary(report, 'epoll-et+rdhup').counts.afterEof, '0 of 2');
  });

  it('one-shot without re-arming never hears the FIN', () => {
    const s = summary(report, 'epoll-oneshot+rdhup');
    assert.equal(s.wakeups, 1);
    assert.equal(s.counts.atFin, '-');
    assert.equal(s.stalled, true);
  });
});
