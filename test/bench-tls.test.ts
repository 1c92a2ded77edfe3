/**
 * The TLS benchmarks' harnesses with tiny parameters, so they cannot rot: the design comparison
 * (bench/tls-designs.ts: Node's tls.TLSSocket over a Duplex adapter, the addon's engine attached and
 * in run(), Node's own tls server, plain iomux) and `iomux bench --ftp --tls` (bench/ftps.ts: iomux,
 * pyftpdlib's TLS_FTPHandler, vsftpd ssl_enable). Numbers are not asserted, only that each run moved
 * every byte and reported a cost.
 */
import * as assert from 'node:assert/strict';
import { DESIGNS, measureDesigns } from '../bench/tls-designs';
import { FTPS_SERVERS, formatFtps, runFtps } from '../bench/ftps';

describe('bench: TLS', function () {
  this.timeout(120000);

  it('tls-designs: every design moves 4 MiB each way and reports MB/s and CPU per MB', async () => {
    const results = await measureDesigns({ mib: 4, rounds: 1 });
    assert.equal(results.length, DESIGNS.length * 2);
    for (const r of results) {
      assert.ok(r.mbps > 0 && r.cpuMsPerMB > 0, JSON.stringify(r));
    }
  });

  it('bench --ftp --tls: iomux, pyftpdlib and vsftpd each store and retrieve the file over FTPS', async () => {
    const result = await runFtps({ servers: [...FTPS_SERVERS], transferSize: 4 * 1024 * 1024, rounds: 1, pin: false });
    assert.deepEqual(result.skips, [], 'the FTPS peers are installed by .ci/run (python3-pyftpdlib, python3-openssl, vsftpd, lftp)');
    assert.equal(result.rows.length, FTPS_SERVERS.length * 2);
    for (const row of result.rows) assert.ok(row.mbPerSec > 0 && row.cpuMsPerMB >= 0, JSON.stringify(row));
    assert.match(formatFtps(result), /\| iomux \| RETR \|/);
  });
});
