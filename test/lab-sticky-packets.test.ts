import * as assert from 'node:assert/strict';
import type { Report } from '../tools/lab/model';
import { unavailableReason } from '../tools/lab/mechanisms';
import { runChecked, summary, trace } from './lab-helpers';

describe('lab: sticky-packets (TCP is a byte stream)', () => {
  let report: Report;

  before(async () => {
    report = await runChecked('sticky-packets', { messages: 2, chunk: 100, bytes: 65536 });
  });

  it('runs under every mechanism, and every count is the same under each: this is TCP, not readiness', () => {
    assert.deepEqual(report.traces.map((t) => t.label), ['select', 'poll', 'epoll-lt', 'epoll-et', 'epoll-oneshot',
      ...(unavailableReason('io_uring') === null ? ['io_uring'] : [])]);
    const counts = report.traces.map((t) => JSON.stringify({ ...t.summary.counts, split: undefined, recvs2: undefined, largestRecv: undefined }));
    assert.equal(new Set(counts).size, 1, counts.join('\n'));
    assert.match(report.conclusions.join('\n'), /The counts are the same under every mechanism/);
  });

  for (const label of ['select', 'poll', 'epoll-lt', 'epoll-et', 'epoll-oneshot']) {
    it(`${label}: two sends of 100 bytes arrive in exactly one recv of 200`, () => {
      const c = summary(report, label).counts;
      assert.deepEqual([c.sends1, c.recvs1, c.bytes1, c.coalesced], [2, 1, 200, '2 → 1']);
      const wake = trace(report, label).rows.find((r) => r.kind === 'wake' && r.action.startsWith('reader 1'));
      assert.match(wake?.action ?? '', /^reader 1: 1 recv\(65536\) call → 200 bytes/);
    });

    it(`${label}: one send of 65536 bytes to a small SO_RCVBUF arrives in many recvs, none larger than the buffer`, () => {
      const c = summary(report, label).counts;
      assert.equal(c.sends2, 1, 'the send buffer took the whole send in one call');
      assert.equal(c.bytes2, 65536);
      assert.equal(c.rcvbuf, 8192, 'the kernel doubles the SO_RCVBUF it is given (4096)');
      assert.ok(Number(c.largestRecv) <= Number(c.rcvbuf), `largest recv ${c.largestRecv}`);
      assert.ok(Number(c.recvs2) >= Math.ceil(65536 / Number(c.rcvbuf)), `${c.recvs2} recvs`);
    });

    it(`${label}: the seed's recv(1024) "header" returns 1024 bytes: a 5-byte size and 1019 bytes of the file, lost; the framed reader loses none`, () => {
      const s = summary(report, label);
      const c = s.counts;
      assert.deepEqual(
        [c.headerRecv, c.headerBytes, c.announced, c.seedLost, c.seedStored, c.seedMissing],
        [1024, 5, 65536, 1019, 64517, 1019]);
      assert.equal(s.stalled, true, 'the seed reader waits for bytes that were already sent');
      assert.equal(s.bytesLeft, 1019);
      assert.deepEqual([c.framedFrames, c.framedBytes, c.framedLost], [1, 65536, 0]);
      const rows = trace(report, label).rows;
      assert.match(rows.find((r) => r.action.startsWith('seed reader'))?.action ?? '',
        /size = recv\(1024\) → 1024 bytes "65536line 00…" → 65536, 1019 bytes of the file lost with it; then 64 recv\(1024\) calls → 63 × 1024 \+ 5 bytes/);
      assert.match(rows.find((r) => r.kind === 'stall')?.action ?? '', /STALLED with 64517 of 65536 bytes of the file: it waits for 1019 that were already sent/);
      assert.match(rows.at(-1)?.action ?? '', /framed reader: 1 frame of 65536 bytes, identical to the file/);
    });
  }

  it('the summary table and the conclusions say it in words', () => {
    assert.deepEqual(report.columns.map((c) => c.key), ['coalesced', 'split', 'largestRecv', 'seedLost', 'framedLost']);
    assert.match(report.conclusions[0], /2 sends arrived in 1 recv; 1 send of 65536 bytes arrived in \d+ recvs/);
    assert.match(report.conclusions.join(' '), /stored 64517 bytes and waited for 1019 that had already been swallowed with the header/);
  });
});
