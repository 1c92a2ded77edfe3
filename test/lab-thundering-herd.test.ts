import * as assert from 'node:assert/strict';
import type { Report } from '../tools/lab/model';
import { runChecked, summary, trace } from './lab-helpers';

describe('lab: thundering-herd (4 worker threads, each with its own watcher, on one listener)', () => {
  let report: Report;
  const connections = 16;

  before(async () => {
    report = await runChecked('thundering-herd', { workers: 4, connections }, ['select', 'poll', 'epoll-lt']);
  });

  const perConnection = (label: string): number => Number(summary(report, label).counts.perConnection);

  it('with EPOLLEXCLUSIVE fewer workers wake per connection than without (averaged over 16 connections)', () => {
    const exclusive = perConnection('epoll-lt+exclusive');
    assert.ok(exclusive >= 1, 'every connection woke at least one worker');
    for (const label of ['select', 'poll', 'epoll-lt']) {
      assert.ok(perConnection(label) > 1, `${label}: more than one worker woke per connection`);
      assert.ok(exclusive < perConnection(label), `exclusive ${exclusive} should be below ${label} ${perConnection(label)}`);
    }
  });

  it('EPOLLEXCLUSIVE does not spread the load: one worker takes most of the connections', () => {
    const byWorker = String(summary(report, 'epoll-lt+exclusive').counts.byWorker).split('/').map(Number);
    assert.equal(byWorker.length, 4);
    assert.ok(Math.max(...byWorker) > connections / 2, `wake-ups by worker: ${byWorker.join('/')}`);
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
    assert.equal(summary(refused, 'epoll-oneshot+exclusive').error, 'epoll_ctl failed with EINVAL');
    assert.equal(summary(refused, 'epoll-oneshot').wakeups, 1);
  });
});
