import * as assert from 'node:assert/strict';
import type { Report } from '../lib/lab/model';
import { runChecked, summary, trace } from './lab-helpers';

describe('lab: thundering-herd (4 worker threads, each with its own epoll, on one listener)', () => {
  let report: Report;
  const connections = 16;

  before(async () => {
    report = await runChecked('thundering-herd', { workers: 4, connections }, ['epoll-lt']);
  });

  it('with EPOLLEXCLUSIVE fewer workers wake per connection than without (averaged over 16 connections)', () => {
    const plain = Number(summary(report, 'epoll-lt').counts.perConnection);
    const exclusive = Number(summary(report, 'epoll-lt+exclusive').counts.perConnection);
    assert.ok(exclusive < plain, `exclusive ${exclusive} should be below plain ${plain}`);
    assert.ok(exclusive >= 1, 'every connection woke at least one worker');
  });

  it('exactly one woken worker accepts each connection; the others get EAGAIN', () => {
    for (const label of ['epoll-lt', 'epoll-lt+exclusive']) {
      const t = trace(report, label);
      const wakes = t.rows.filter((r) => r.kind === 'wake');
      assert.equal(wakes.filter((r) => r.bytes === 1).length, connections, label);
      assert.equal(t.summary.counts.forNothing, wakes.length - connections, label);
      assert.ok(t.rows.every((r) => r.kind !== 'step' || !r.action.startsWith('no worker')), label);
    }
  });

  it('the kernel refuses EPOLLEXCLUSIVE together with EPOLLONESHOT (EINVAL)', async () => {
    const refused = await runChecked('thundering-herd', { workers: 1, connections: 1 }, ['epoll-oneshot']);
    assert.match(summary(refused, 'epoll-oneshot+exclusive').error ?? '', /^EINVAL/);
    assert.equal(summary(refused, 'epoll-oneshot').wakeups, 1);
  });
});
