/**
 * The lab's pictures (`iomux trace --svg / --html`): well-formed SVG (read back by a real XML parser,
 * Python's), one lane per mechanism the scenario ran, and marks that match the run's exact counts.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { LabParams, Report } from '../tools/lab/model';
import { renderSvg } from '../tools/lab/picture';
import { renderHtml } from '../tools/lab/page';
import { SCENARIOS } from '../tools/lab/registry';
import { runChecked, summary } from './lab-helpers';

const CLI = path.resolve(__dirname, '..', 'tools', 'cli.js');

type Marks = Record<string, Array<Record<string, string>>>;
interface Parsed {
  root: string;
  lanes: Array<{ label: string; marks: Marks }>;
}

/** Parses the SVG with Python's XML parser (it throws on anything not well-formed) and lists each lane's marks. */
function parseSvg(svg: string): Parsed {
  const script = `
import sys, json, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
ns = '{http://www.w3.org/2000/svg}'
lanes = []
for g in root.iter(ns + 'g'):
    if g.get('class') != 'lane':
        continue
    marks = {}
    for el in g.iter():
        cls = (el.get('class') or '').split()
        if 'mark' in cls:
            kind = [c for c in cls if c != 'mark'][0]
            marks.setdefault(kind, []).append({k: v for k, v in el.attrib.items() if k.startswith('data-')})
    lanes.append({'label': g.get('data-label'), 'marks': marks})
print(json.dumps({'root': root.tag, 'lanes': lanes}))
`;
  const result = spawnSync('python3', ['-c', script], { input: svg, encoding: 'utf8' });
  assert.equal(result.status, 0, `not well-formed XML: ${result.stderr}`);
  return JSON.parse(result.stdout) as Parsed;
}

function marks(parsed: Parsed, label: string, kind: string): Array<Record<string, string>> {
  const lane = parsed.lanes.find((l) => l.label === label);
  assert.ok(lane, `no lane ${label}`);
  return lane.marks[kind] ?? [];
}

/** Small parameters: every scenario, quickly. */
const QUICK: Record<string, Partial<LabParams>> = {
  'accept-storm': { connections: 6 },
  'thundering-herd': { connections: 3, workers: 3 },
  'interest-churn': { messages: 5 },
  writable: { waits: 2, cycles: 1 },
  'sticky-packets': { bytes: 8192 },
};

describe('lab: the pictures (iomux trace --svg, --html)', function () {
  this.timeout(60000);
  const reports = new Map<string, Report>();

  before(async () => {
    for (const s of SCENARIOS) reports.set(s.name, await runChecked(s.name, QUICK[s.name] ?? {}));
  });

  it('every scenario draws well-formed SVG with one lane per mechanism it ran, and one wake-up mark per counted wake-up', () => {
    for (const [name, report] of reports) {
      const parsed = parseSvg(renderSvg(report));
      assert.equal(parsed.root, '{http://www.w3.org/2000/svg}svg', name);
      assert.deepEqual(parsed.lanes.map((l) => l.label), report.traces.map((t) => t.label), name);
      for (const t of report.traces) {
        if (t.summary.error) continue;
        assert.equal(marks(parsed, t.label, 'wake').length, t.summary.wakeups, `${name} ${t.label}: wake-up marks`);
        const steps = t.rows.filter((r) => r.kind === 'step').length;
        assert.equal(marks(parsed, t.label, 'step').length, steps, `${name} ${t.label}: step marks`);
      }
    }
  });

  it('partial-read: the recv marks add up to the bytes read; the stall marks the bytes left unread', () => {
    const report = reports.get('partial-read') as Report;
    const parsed = parseSvg(renderSvg(report));
    for (const t of report.traces) {
      const recvBytes = marks(parsed, t.label, 'recv').map((m) => Number(m['data-bytes']));
      assert.equal(recvBytes.reduce((a, b) => a + b, 0), t.summary.bytesRead, t.label);
      assert.equal(recvBytes.length, t.summary.wakeups, `${t.label}: one recv(1024) per wake-up`);
      const stranded = marks(parsed, t.label, 'stranded').map((m) => Number(m['data-left']));
      assert.deepEqual(stranded, t.summary.stalled ? [t.summary.bytesLeft] : [], t.label);
      assert.equal(marks(parsed, t.label, 'stall').length, t.summary.stalled ? 1 : 0, t.label);
    }
    assert.deepEqual(marks(parsed, 'epoll-et', 'stranded'), [{ 'data-left': '9216' }]);
  });

  it('partial-read --drain: one wake-up, 10 recv marks of 1024 bytes and one EAGAIN mark', async () => {
    const report = await runChecked('partial-read', { drain: true }, ['epoll-et']);
    const parsed = parseSvg(renderSvg(report));
    assert.equal(marks(parsed, 'epoll-et', 'wake').length, 1);
    assert.deepEqual(marks(parsed, 'epoll-et', 'recv').map((m) => m['data-bytes']), Array(10).fill('1024'));
    assert.equal(marks(parsed, 'epoll-et', 'eagain').length, 1);
  });

  it('half-close: each wake-up mark carries the events the wait reported; end-of-stream marks match the recv → 0 calls', () => {
    const report = reports.get('half-close') as Report;
    const parsed = parseSvg(renderSvg(report));
    for (const t of report.traces) {
      assert.deepEqual(marks(parsed, t.label, 'wake').map((m) => m['data-events']),
        t.rows.filter((r) => r.kind === 'wake').map((r) => r.events.join('|')), t.label);
      const eofs = t.rows.flatMap((r) => r.calls ?? []).filter((c) => c.op === 'recv' && c.result === 0).length;
      assert.equal(marks(parsed, t.label, 'eof').length, eofs, t.label);
    }
    assert.ok(marks(parsed, 'epoll-et+rdhup', 'wake').some((m) => m['data-events'] === 'IN|RDHUP'));
  });

  it('accept-storm: one accept mark per connection accepted; the stall marks the connections still queued', () => {
    const report = reports.get('accept-storm') as Report;
    const parsed = parseSvg(renderSvg(report));
    for (const t of report.traces) {
      assert.equal(marks(parsed, t.label, 'accept').length, Number(t.summary.counts.accepted), t.label);
    }
    assert.deepEqual(marks(parsed, 'epoll-et', 'stranded'), [{ 'data-left': String(summary(report, 'epoll-et').counts.queued) }]);
  });

  it('interest-churn: interest marks that cost a system call match the counted EPOLL_CTL_MODs; recv marks match the reads', () => {
    const report = reports.get('interest-churn') as Report;
    const parsed = parseSvg(renderSvg(report));
    for (const t of report.traces) {
      const costly = marks(parsed, t.label, 'interest').filter((m) => m['data-syscall'] === '1').length;
      assert.equal(costly, Number(t.summary.counts.syscalls), t.label);
      const reads = marks(parsed, t.label, 'recv').length + marks(parsed, t.label, 'eagain').filter((m) => m['data-op'] === 'recv').length;
      assert.equal(reads, Number(t.summary.counts.reads), t.label);
    }
  });

  it('the HTML page is self-contained: the SVG inline, the counts as a table, no script and nothing fetched', () => {
    const report = reports.get('partial-read') as Report;
    const html = renderHtml(report);
    assert.match(html, /^<!doctype html>/);
    assert.match(html, /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(html, /<th>epoll-et<\/th><td>1<\/td><td>1024<\/td><td>9216<\/td><td>yes<\/td>/);
    assert.doesNotMatch(html, /<script|<link|\ssrc=|url\(http|@import/i);
    // The only URL is the SVG namespace, which is a name, not a fetch.
    assert.deepEqual([...new Set(html.match(/https?:\/\/[^"'\s<)]+/g))], ['http://www.w3.org/2000/svg']);
  });

  it('the CLI writes both files and still prints the text', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-lab-'));
    try {
      const svg = path.join(dir, 'out.svg');
      const html = path.join(dir, 'out.html');
      const result = spawnSync(process.execPath, [CLI, 'trace', 'partial-read', '-m', 'epoll-lt,epoll-et', '--stall-ms', '20',
        '--svg', svg, '--html', html], { encoding: 'utf8', timeout: 15000 });
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, /^ {2}epoll-et\s+1\s+1024\s+9216\s+yes$/m);
      assert.match(result.stderr, /wrote .*out\.svg/);
      const parsed = parseSvg(fs.readFileSync(svg, 'utf8'));
      assert.deepEqual(parsed.lanes.map((l) => l.label), ['epoll-lt', 'epoll-et']);
      assert.equal(marks(parsed, 'epoll-lt', 'wake').length, 10);
      assert.match(fs.readFileSync(html, 'utf8'), /<svg[\s\S]*<\/svg>[\s\S]*<table>/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
