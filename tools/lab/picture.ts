/**
 * A report as a picture (SVG): one lane per mechanism, its steps left to right in the order they
 * happened, every wake-up, recv (with its bytes), EAGAIN, interest change and stranded byte marked,
 * the scenario's exact counts beside each lane and a legend of what appears.
 *
 * Drawn by hand from the lab's own model rather than with vega-lite (which the benchmark's charts use):
 * this is a diagram of discrete events with glyphs of our own, not a chart over scales; every mark
 * carries its kind as a class, so the tests count marks against the counts; and `iomux trace` keeps
 * needing nothing beyond commander.
 *
 * The x axis is step order, not time: the kernel answers within microseconds while a wait that reports
 * nothing lasts --stall-ms, so drawn to time the silences would squeeze every wake-up into a sliver,
 * and the times vary with the machine's load while the order does not. Each mark's tooltip has its time.
 */
import type { Call, EventName, Report, Row, Trace } from './model';
import { summaryValue, formatValue } from './render';

const FONT = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', Helvetica, Arial, sans-serif";
const MONO = "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace";
const PAD = 18;
/** The widest the lanes' tracks get before columns shrink (and their labels give way to tooltips). */
const MAX_TRACK = 1180;
const MIN_WIDTH = 760;
const CALL_W = 4;
const BAR_MAX = 22;

const COLORS = {
  IN: '#2f6fb5',
  OUT: '#2a9d4b',
  PRI: '#17becf',
  RDHUP: '#f28e2b',
  HUP: '#d62728',
  ERR: '#7a0f0f',
  NVAL: '#7a0f0f',
  END: '#7b4fa0',
  send: '#2a9d4b',
  accept: '#138a8a',
  interest: '#e0a100',
  eof: '#222222',
  eagain: '#8a8a8a',
  step: '#7d7d7d',
  quiet: '#a0a0a0',
  stranded: '#d62728',
  text: '#1b1b1b',
  muted: '#5f6368',
  rule: '#dadce0',
} as const;

/** The condition an event ring shows, most serious first. */
const RING_ORDER: EventName[] = ['ERR', 'NVAL', 'HUP', 'RDHUP', 'END'];

export function renderSvg(report: Report): string {
  return new Picture(report).draw();
}

interface Column {
  x: number;
  width: number;
}

/** Per lane, per row: what the row needs horizontally. */
interface Need {
  mark: number;
  label: number;
}

class Picture {
  private readonly out: string[] = [];
  private width = 0;
  private y = 0;
  private columns: Column[] = [];
  /** Labels are drawn everywhere when the natural layout fits, else only where they change. */
  private roomy = true;
  private readonly maxBytes: number;
  private readonly unit: string;
  private spillEnd = 0;
  /** What is left: bytes unread, connections still queued. */
  private readonly leftWord: string;

  constructor(private readonly report: Report) {
    const sizes = report.traces.flatMap((t) => t.rows.flatMap((r) => (r.calls ?? []).filter(isTransfer).map((c) => c.result)));
    this.maxBytes = Math.max(1, ...sizes);
    this.unit = ` ${report.unit}`;
    this.leftWord = report.unit === 'bytes' ? 'unread' : 'still queued';
  }

  draw(): string {
    this.layoutColumns();
    const trackWidth = this.columns.length ? this.columns[this.columns.length - 1].x + this.columns[this.columns.length - 1].width : 0;
    this.width = Math.max(MIN_WIDTH, Math.ceil(trackWidth + 2 * PAD), Math.ceil(this.spillEnd + PAD), this.headerWidth() + 2 * PAD);
    const body: string[] = [];
    this.y = PAD;
    this.title(body);
    this.legend(body);
    for (const trace of this.report.traces) this.lane(body, trace);
    this.footer(body);
    const height = Math.ceil(this.y + PAD);
    this.out.push(
      `<svg xmlns="http://www.w3.org/2000/svg" width="${this.width}" height="${height}" viewBox="0 0 ${this.width} ${height}" ` +
        `font-family="${esc(FONT)}" role="img" aria-labelledby="lab-title">`,
      defs(),
      `<rect width="100%" height="100%" fill="#ffffff"/>`,
      ...body,
      '</svg>',
    );
    return `${this.out.join('\n')}\n`;
  }

  // ---- layout

  private layoutColumns(): void {
    // A lane's last row may spill its label to the right: nothing of that lane follows it.
    const lanes = this.report.traces.filter((t) => !t.summary.error)
      .map((t) => t.rows.map((r, i) => (i === t.rows.length - 1 && r.kind !== 'wake' ? { ...this.need(r), label: 0 } : this.need(r))));
    const count = Math.max(0, ...lanes.map((l) => l.length));
    const widths = (withLabels: boolean): number[] => Array.from({ length: count }, (_, i) =>
      Math.max(...lanes.map((l) => (l[i] ? (withLabels ? Math.max(l[i].mark, l[i].label) : l[i].mark) : 0))));
    let w = widths(true);
    if (sum(w) > MAX_TRACK) {
      this.roomy = false;
      w = widths(false);
      const total = sum(w);
      if (total > MAX_TRACK) w = w.map((x) => x * (MAX_TRACK / total));
    }
    let x = PAD;
    this.columns = w.map((width) => {
      const column = { x, width };
      x += width;
      return column;
    });
    // Room for the labels that spill to the right of each lane's last row.
    this.spillEnd = Math.max(0, ...this.report.traces.filter((t) => !t.summary.error && t.rows.length).map((t) => {
      const i = t.rows.length - 1;
      return this.columns[i].x + this.need(t.rows[i]).label;
    }));
  }

  private need(row: Row): Need {
    if (row.kind === 'step') return { mark: 14, label: row.mark ? textWidth(row.mark, 10) + 8 : 0 };
    if (row.kind === 'stall') return { mark: 24, label: textWidth(this.strandedText(row.left ?? 0, true), 10) + 10 };
    if (row.kind === 'quiet') return { mark: 16, label: row.left ? textWidth(this.amount(row.left), 9) + 8 : 0 };
    const calls = row.calls?.length ?? 0;
    const events = textWidth(row.events.join('|'), 9) + 6;
    const bytes = row.bytes ? textWidth(String(row.bytes), 9) + 6 : 0;
    return { mark: Math.max(16, calls * CALL_W + 8), label: Math.max(events, bytes) };
  }

  /** The counts' header: each lane's label, then one cell per summary column, aligned across lanes. */
  private headerCells(): { labelWidth: number; cellWidths: number[] } {
    const labelWidth = Math.max(90, ...this.report.traces.map((t) => textWidth(t.label, 13, true))) + 14;
    const cellWidths = this.report.columns.map((c) => Math.max(...this.report.traces.map((t) =>
      textWidth(`${c.label} `, 11.5) + textWidth(this.cell(t, c.key), 11.5, true))) + 18);
    return { labelWidth, cellWidths };
  }

  private headerWidth(): number {
    const { labelWidth, cellWidths } = this.headerCells();
    return Math.min(labelWidth + sum(cellWidths), MAX_TRACK + 60);
  }

  private cell(trace: Trace, key: string): string {
    return trace.summary.error ? '-' : formatValue(summaryValue(trace.summary, key));
  }

  // ---- parts

  private title(body: string[]): void {
    const r = this.report;
    const lines = wrap(`iomux trace ${r.scenario} — ${r.title}`, this.width - 2 * PAD, 16, true);
    lines.forEach((line, i) => {
      this.y += 20;
      body.push(text(PAD, this.y, line, { size: 16, weight: 'bold', id: i === 0 ? 'lab-title' : undefined }));
    });
    this.y += 6;
    for (const line of wrap(r.setup, this.width - 2 * PAD, 12)) {
      this.y += 16;
      body.push(text(PAD, this.y, line, { size: 12, fill: COLORS.muted }));
    }
  }

  private legend(body: string[]): void {
    const seen = this.seen();
    const items: Array<[string, string]> = [];
    if (seen.step) items.push([stepGlyph(8, 4), 'the script acts (the peer sends, connects, shuts down)']);
    for (const name of ['IN', 'OUT', 'PRI'] as EventName[]) {
      if (seen.fills.has(name)) items.push([wakeGlyph(8, 0, [name], 6), `wake-up reporting ${name}${name === 'IN' ? ' (readable)' : name === 'OUT' ? ' (writable)' : ' (urgent data)'}`]);
    }
    const rings: Record<string, string> = {
      RDHUP: 'RDHUP: the peer shut down its sending side', HUP: 'HUP: both directions shut', ERR: 'ERR: an error (a reset)',
      NVAL: 'NVAL', END: 'END: the multishot poll is over',
    };
    for (const name of RING_ORDER) if (seen.rings.has(name)) items.push([wakeGlyph(8, 0, ['IN', name], 6), `ring: ${rings[name]}`]);
    if (seen.recv) items.push([`<rect x="6" y="-8" width="3" height="14" fill="${COLORS.IN}"/>`, `recv, bar height ~ bytes (number below: bytes this wake-up)`]);
    if (seen.send) items.push([`<rect x="6" y="-8" width="3" height="14" fill="${COLORS.send}"/>`, 'send']);
    if (seen.accept) items.push([`<rect x="5" y="-4" width="4" height="4" fill="${COLORS.accept}"/>`, 'accept → a connection']);
    if (seen.eagain) items.push([eagainGlyph(7, -2), 'EAGAIN (nothing more now)']);
    if (seen.eof) items.push([`<circle cx="7" cy="-2" r="2.6" fill="${COLORS.eof}"/>`, 'recv → 0: end of stream']);
    if (seen.error) items.push([errorGlyph(7, -2), 'the call failed (ECONNRESET)']);
    if (seen.interest) items.push([diamond(7, -2, 4, COLORS.interest, true), 'interest change (hollow: no system call)']);
    if (seen.quiet) items.push([`<circle cx="8" cy="0" r="5" fill="none" stroke="${COLORS.quiet}" stroke-dasharray="2 2"/>`, 'a wait that reported nothing']);
    if (seen.stranded) items.push([`<rect x="1" y="-6" width="14" height="10" fill="url(#stranded)" stroke="${COLORS.stranded}"/>`, `${this.report.unit} left ${this.leftWord}, unreported`]);
    if (seen.stall) items.push([`<rect x="1" y="-6" width="14" height="10" fill="${COLORS.stranded}"/>`, 'stall: the run ends with work left']);
    this.y += 14;
    let x = PAD;
    this.y += 16;
    for (const [g, label] of items) {
      const w = 22 + textWidth(label, 11) + 18;
      if (x + w > this.width - PAD && x > PAD) {
        x = PAD;
        this.y += 18;
      }
      body.push(`<g class="legend-item" transform="translate(${f(x)},${f(this.y - 4)})">${g}</g>`);
      body.push(text(x + 20, this.y, label, { size: 11, fill: COLORS.text }));
      x += w;
    }
    this.y += 18;
    body.push(text(PAD, this.y, 'Left to right: what happened, in order (not to scale in time: hover a mark for its time and what was done).',
      { size: 11, fill: COLORS.muted, style: 'italic' }));
    this.y += 10;
  }

  private seen(): {
    step: boolean; recv: boolean; send: boolean; accept: boolean; eagain: boolean; eof: boolean; error: boolean;
    interest: boolean; quiet: boolean; stranded: boolean; stall: boolean; fills: Set<EventName>; rings: Set<EventName>;
  } {
    const rows = this.report.traces.flatMap((t) => t.rows);
    const calls = rows.flatMap((r) => r.calls ?? []);
    const wakes = rows.filter((r) => r.kind === 'wake');
    return {
      step: rows.some((r) => r.kind === 'step'),
      recv: calls.some((c) => c.op === 'recv' && c.result > 0),
      send: calls.some((c) => c.op === 'send' && c.result > 0),
      accept: calls.some((c) => c.op === 'accept' && c.result > 0),
      eagain: calls.some((c) => c.result === -1 && !c.error),
      eof: calls.some((c) => c.op === 'recv' && c.result === 0 && !c.error),
      error: calls.some((c) => c.error !== undefined),
      interest: calls.some((c) => c.op === 'interest'),
      quiet: rows.some((r) => r.kind === 'quiet'),
      stranded: rows.some((r) => (r.left ?? 0) > 0),
      stall: rows.some((r) => r.kind === 'stall'),
      fills: new Set(wakes.map((r) => fillOf(r.events)).filter((e): e is EventName => e !== null)),
      rings: new Set(wakes.flatMap((r) => r.events.filter((e) => RING_ORDER.includes(e)))),
    };
  }

  private lane(body: string[], trace: Trace): void {
    const top = this.y + 14;
    body.push(`<line x1="${PAD}" x2="${this.width - PAD}" y1="${f(top)}" y2="${f(top)}" stroke="${COLORS.rule}"/>`);
    body.push(`<g class="lane" data-label="${esc(trace.label)}" data-wakeups="${trace.summary.wakeups}">`);
    // Header: the label, then the exact counts, aligned across lanes.
    const { labelWidth, cellWidths } = this.headerCells();
    let y = top + 18;
    body.push(text(PAD, y, trace.label, { size: 13, weight: 'bold' }));
    let x = PAD + labelWidth;
    this.report.columns.forEach((c, i) => {
      if (x + cellWidths[i] > this.width - PAD + 8 && x > PAD + labelWidth) {
        x = PAD + labelWidth;
        y += 16;
      }
      body.push(`<text x="${f(x)}" y="${f(y)}" font-size="11.5" class="count" data-key="${esc(c.key)}"><tspan fill="${COLORS.muted}">${esc(c.label)}</tspan> ` +
        `<tspan font-weight="bold" fill="${COLORS.text}">${esc(this.cell(trace, c.key))}</tspan></text>`);
      x += cellWidths[i];
    });
    y += 15;
    const roles = Object.entries(trace.descriptors).map(([role, fd]) => `${role} fd ${fd}`).join(', ');
    const registration = `${trace.registration}${roles ? ` · ${roles}` : ''}`;
    body.push(text(PAD, y, clip(registration, this.width - 2 * PAD, 10, true), { size: 10, fill: COLORS.muted, family: MONO }));
    if (trace.summary.error) {
      y += 22;
      body.push(text(PAD, y, `the kernel refused the setup: ${trace.summary.error}`, { size: 12, fill: COLORS.stranded }));
      body.push('</g>');
      this.y = y + 10;
      return;
    }
    const track = y + 34;
    const last = this.columns[Math.min(trace.rows.length, this.columns.length) - 1];
    const end = last ? last.x + last.width : PAD;
    body.push(`<line x1="${PAD}" x2="${f(end)}" y1="${f(track)}" y2="${f(track)}" stroke="#b0b4b9" stroke-width="1.5"/>`);
    let previousLabel: Record<string, string> = {};
    // Each set of events is named where it first appears in the lane; after that its colours say it.
    const named = new Set<string>();
    trace.rows.forEach((row, i) => {
      const last = i === trace.rows.length - 1;
      // The last row may use the room to the picture's edge.
      const column = last && row.kind !== 'wake' ? { ...this.columns[i], width: Math.max(this.columns[i].width, this.width - PAD - this.columns[i].x) } : this.columns[i];
      const cx = this.columns[i].x + this.columns[i].width / 2;
      const tooltip = `${row.t.toFixed(2)} ms${row.fd === null ? '' : ` · fd ${row.fd}`}${row.events.length ? ` · ${row.events.join('|')}` : ''}: ${row.action}`;
      const label = (kind: string, value: string, width: number): boolean => {
        const fits = width <= column.width + 2;
        const changed = previousLabel[kind] !== value;
        previousLabel = { ...previousLabel, [kind]: value };
        return fits && (this.roomy || changed);
      };
      if (row.kind === 'step') {
        body.push(`<g class="mark step"><title>${esc(tooltip)}</title>${stepGlyph(cx, track - 9)}</g>`);
        if (row.mark && label('step', row.mark, textWidth(row.mark, 10) + 4)) {
          body.push(last
            ? text(cx - 6, track - 16, row.mark, { size: 10, fill: COLORS.muted })
            : text(cx, track - 16, row.mark, { size: 10, fill: COLORS.muted, anchor: 'middle' }));
        } else if (row.mark && !this.roomy && previousLabel.stepRun !== row.mark) {
          // Narrow columns: a new label may run to the right, up to the lane's next labelled step.
          const next = trace.rows.findIndex((r, j) => j > i && r.kind === 'step' && r.mark !== undefined);
          const room = (next < 0 ? this.width - PAD : this.columns[next].x) - (cx - 5);
          if (textWidth(row.mark, 10) + 4 <= room) body.push(text(cx - 5, track - 16, row.mark, { size: 10, fill: COLORS.muted }));
        }
        if (row.mark) previousLabel = { ...previousLabel, stepRun: row.mark };
        if (row.calls?.length) body.push(this.calls(row.calls, this.columns[i], track, tooltip));
        const moved = (row.calls ?? []).filter(isTransfer).reduce((a, c) => a + c.result, 0);
        if (moved > 0 && label('bytes', String(moved), textWidth(String(moved), 9) + 2)) {
          body.push(text(cx, track + 46, String(moved), { size: 9, fill: COLORS.text, anchor: 'middle' }));
        }
      } else if (row.kind === 'wake') {
        const r = Math.max(3, Math.min(6.5, column.width / 2 - 1.5));
        const worker = row.worker !== undefined ? ` data-worker="${row.worker}"` : '';
        body.push(`<g class="mark wake" data-events="${row.events.join('|')}"${worker}><title>${esc(tooltip)}</title>${wakeGlyph(cx, track, row.events, r)}</g>`);
        const events = row.events.join('|');
        if (!named.has(events) && label('events', events, textWidth(events, 9) + 2)) {
          named.add(events);
          body.push(text(cx, track - 11, events, { size: 9, fill: COLORS.text, anchor: 'middle' }));
        }
        if (row.worker !== undefined && column.width >= 10) {
          body.push(text(cx, track + 30, `w${row.worker}`, { size: 8.5, fill: COLORS.muted, anchor: 'middle' }));
        }
        if (row.calls?.length) body.push(this.calls(row.calls, this.columns[i], track, tooltip));
        const moved = (row.calls ?? []).filter(isTransfer).reduce((a, c) => a + c.result, 0);
        if (moved > 0 && label('bytes', String(moved), textWidth(String(moved), 9) + 2)) {
          body.push(text(cx, track + 46, String(moved), { size: 9, fill: COLORS.text, anchor: 'middle' }));
        }
      } else {
        body.push(`<g class="mark ${row.kind}"><title>${esc(tooltip)}</title>` +
          (row.kind === 'stall'
            ? `<rect x="${f(cx - 7)}" y="${f(track - 7)}" width="14" height="14" fill="${COLORS.stranded}"/>`
            : `<circle cx="${f(cx)}" cy="${f(track)}" r="5" fill="#ffffff" stroke="${COLORS.quiet}" stroke-dasharray="2 2"/>`) +
          '</g>');
        const left = row.left ?? 0;
        if (left > 0) body.push(this.stranded(row, this.columns[i], column, track, tooltip));
        if (row.kind === 'stall') body.push(text(cx, track - 12, 'stall', { size: 10, fill: COLORS.stranded, weight: 'bold', anchor: 'middle' }));
      }
    });
    body.push('</g>');
    this.y = track + 52;
  }

  /** The handler's calls of one row, left to right under the track. */
  private calls(calls: Call[], column: Column, track: number, tooltip: string): string {
    const step = Math.min(CALL_W, Math.max(1.2, (column.width - 4) / calls.length));
    const barWidth = Math.max(1, step - 1);
    let x = column.x + column.width / 2 - (step * calls.length) / 2;
    const parts: string[] = [];
    const base = track + 9;
    for (const call of calls) {
      const title = `<title>${esc(describeCall(call))} — ${esc(tooltip)}</title>`;
      if (call.error) {
        parts.push(`<g class="mark error" data-op="${call.op}" data-error="${esc(call.error)}">${title}${errorGlyph(x + barWidth / 2, base + 3)}</g>`);
      } else if (call.op === 'interest') {
        parts.push(`<g class="mark interest" data-syscall="${call.result}">${title}${diamond(x + barWidth / 2, base + 3, 3.5, COLORS.interest, call.result > 0)}</g>`);
      } else if (call.result === -1) {
        parts.push(`<g class="mark eagain" data-op="${call.op}">${title}${eagainGlyph(x + barWidth / 2, base + 3, Math.min(2.5, step / 1.6 + 0.5))}</g>`);
      } else if (call.op === 'recv' && call.result === 0) {
        parts.push(`<circle class="mark eof" cx="${f(x + barWidth / 2)}" cy="${f(base + 3)}" r="${f(Math.min(2.8, step / 1.5 + 0.8))}" fill="${COLORS.eof}">${title}</circle>`);
      } else if (call.op === 'accept') {
        parts.push(`<rect class="mark accept" x="${f(x)}" y="${f(base)}" width="${f(barWidth)}" height="${f(barWidth)}" fill="${COLORS.accept}">${title}</rect>`);
      } else {
        const h = 3 + (BAR_MAX - 3) * Math.sqrt(call.result / this.maxBytes);
        const color = call.op === 'send' ? COLORS.send : COLORS.IN;
        parts.push(`<rect class="mark ${call.op}" data-bytes="${call.result}" x="${f(x)}" y="${f(base)}" width="${f(barWidth)}" height="${f(h)}" fill="${color}">${title}</rect>`);
      }
      x += step;
    }
    return parts.join('');
  }

  /** Bytes left unread under a wait that reported nothing: a hatched box in its column, the words below (or to the right, when last). */
  private stranded(row: Row, own: Column, room: Column, track: number, tooltip: string): string {
    const left = row.left ?? 0;
    const stall = row.kind === 'stall';
    const words = this.strandedText(left, stall);
    const fits = textWidth(words, 10) + 6 <= room.width;
    const short = this.amount(left);
    const label = fits ? words : textWidth(short, 9) + 4 <= room.width ? short : '';
    const spill = room.width > own.width;
    // A run that ends stalled: the box runs on to where the other lanes' tracks end, the silence made visible.
    const trackEnd = this.columns.length ? this.columns[this.columns.length - 1].x + this.columns[this.columns.length - 1].width : own.x;
    const w = Math.max(6, (stall && spill ? trackEnd - own.x : own.width) - 4);
    const labelX = spill ? own.x + 2 : own.x + own.width / 2;
    return `<g class="mark stranded" data-left="${left}"><title>${esc(tooltip)}</title>` +
      `<rect x="${f(own.x + 2)}" y="${f(track + 9)}" width="${f(w)}" height="${stall ? 16 : 12}" fill="url(#stranded)" stroke="${COLORS.stranded}"/>` +
      (label ? text(labelX, track + (stall ? 38 : 34), label, { size: fits ? 10 : 9, fill: COLORS.stranded, anchor: spill ? undefined : 'middle', weight: stall ? 'bold' : undefined }) : '') +
      '</g>';
  }

  private amount(n: number): string {
    return `${n}${this.unit}`;
  }

  private strandedText(left: number, stall: boolean): string {
    return `${stall ? 'stalled: ' : ''}${this.amount(left)} ${this.leftWord}`;
  }

  private footer(body: string[]): void {
    const r = this.report;
    this.y += 4;
    body.push(`<line x1="${PAD}" x2="${this.width - PAD}" y1="${f(this.y)}" y2="${f(this.y)}" stroke="${COLORS.rule}"/>`);
    if (r.conclusions.length) {
      this.y += 20;
      body.push(text(PAD, this.y, 'What this shows', { size: 12.5, weight: 'bold' }));
      for (const line of r.conclusions) {
        wrap(line, this.width - 2 * PAD - 14, 12).forEach((part, i) => {
          this.y += 16;
          if (i === 0) body.push(text(PAD, this.y, '•', { size: 12 }));
          body.push(text(PAD + 12, this.y, part, { size: 12 }));
        });
      }
    }
    for (const reason of r.unavailable) {
      this.y += 16;
      body.push(text(PAD, this.y, `skipped ${reason}`, { size: 11, fill: COLORS.muted }));
    }
    this.y += 20;
    const params = Object.entries(r.parameters).map(([k, v]) => `${k}=${String(v)}`).join(' ');
    body.push(text(PAD, this.y, `${r.system.platform} ${r.system.release} · Node ${r.system.node} · ${params}`,
      { size: 10, fill: COLORS.muted }));
  }
}

// ---- glyphs

function defs(): string {
  return `<defs><pattern id="stranded" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">` +
    `<rect width="6" height="6" fill="#fde2e2"/><line x1="0" y1="0" x2="0" y2="6" stroke="${COLORS.stranded}" stroke-width="2"/></pattern></defs>`;
}

function fillOf(events: EventName[]): EventName | null {
  const inOut = events.includes('IN') && events.includes('OUT');
  if (inOut) return 'IN';
  return (['IN', 'OUT', 'PRI'] as EventName[]).find((e) => events.includes(e)) ?? null;
}

/** A wake-up: filled by what it reports (IN, OUT, both halved), ringed by the most serious condition. */
function wakeGlyph(cx: number, cy: number, events: EventName[], r: number): string {
  const ring = RING_ORDER.find((e) => events.includes(e));
  const stroke = ring ? `stroke="${COLORS[ring as keyof typeof COLORS]}" stroke-width="${f(Math.max(1.6, r / 2.6))}"` : 'stroke="#ffffff" stroke-width="0.8"';
  const rr = ring ? r + 0.5 : r;
  if (events.includes('IN') && events.includes('OUT')) {
    return `<path d="M${f(cx)},${f(cy - r)} A${f(r)},${f(r)} 0 0 0 ${f(cx)},${f(cy + r)} Z" fill="${COLORS.IN}"/>` +
      `<path d="M${f(cx)},${f(cy - r)} A${f(r)},${f(r)} 0 0 1 ${f(cx)},${f(cy + r)} Z" fill="${COLORS.OUT}"/>` +
      `<circle cx="${f(cx)}" cy="${f(cy)}" r="${f(rr)}" fill="none" ${stroke}/>`;
  }
  const fill = fillOf(events);
  return `<circle cx="${f(cx)}" cy="${f(cy)}" r="${f(rr)}" fill="${fill ? COLORS[fill as keyof typeof COLORS] : '#ffffff'}" ${stroke}/>`;
}

function stepGlyph(cx: number, cy: number): string {
  return `<path d="M${f(cx - 5)},${f(cy - 4)} L${f(cx + 5)},${f(cy - 4)} L${f(cx)},${f(cy + 4)} Z" fill="${COLORS.step}"/>`;
}

function eagainGlyph(cx: number, cy: number, s = 2.5): string {
  return `<path d="M${f(cx - s)},${f(cy - s)} L${f(cx + s)},${f(cy + s)} M${f(cx - s)},${f(cy + s)} L${f(cx + s)},${f(cy - s)}" stroke="${COLORS.eagain}" stroke-width="1.4"/>`;
}

function errorGlyph(cx: number, cy: number): string {
  return `<path d="M${f(cx)},${f(cy - 4)} L${f(cx + 4)},${f(cy + 3)} L${f(cx - 4)},${f(cy + 3)} Z" fill="${COLORS.ERR}"/>`;
}

function diamond(cx: number, cy: number, s: number, color: string, filled: boolean): string {
  return `<path d="M${f(cx)},${f(cy - s)} L${f(cx + s)},${f(cy)} L${f(cx)},${f(cy + s)} L${f(cx - s)},${f(cy)} Z" ` +
    `fill="${filled ? color : '#ffffff'}" stroke="${color}" stroke-width="1.2"/>`;
}

// ---- text

const esc = (s: string): string => escapeXml(s);

interface TextStyle {
  size: number;
  fill?: string;
  weight?: 'bold';
  anchor?: 'middle' | 'end';
  family?: string;
  style?: 'italic';
  id?: string;
}

function text(x: number, y: number, content: string, s: TextStyle): string {
  const attrs = [
    `x="${f(x)}"`, `y="${f(y)}"`, `font-size="${s.size}"`,
    s.fill ? `fill="${s.fill}"` : `fill="${COLORS.text}"`,
    s.weight ? `font-weight="${s.weight}"` : '',
    s.anchor ? `text-anchor="${s.anchor}"` : '',
    s.family ? `font-family="${esc(s.family)}"` : '',
    s.style ? `font-style="${s.style}"` : '',
    s.id ? `id="${s.id}"` : '',
  ].filter(Boolean);
  return `<text ${attrs.join(' ')}>${esc(content)}</text>`;
}

/** An estimate of the rendered width (no font metrics here): generous, so text does not collide. */
function textWidth(s: string, size: number, bold = false, mono = false): number {
  const per = mono ? 0.61 : bold ? 0.6 : 0.55;
  return s.length * size * per;
}

function wrap(s: string, width: number, size: number, bold = false): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of s.split(/\s+/).filter(Boolean)) {
    const next = line ? `${line} ${word}` : word;
    if (line && textWidth(next, size, bold) > width) {
      lines.push(line);
      line = word;
    } else {
      line = next;
    }
  }
  if (line) lines.push(line);
  return lines;
}

function clip(s: string, width: number, size: number, mono: boolean): string {
  const max = Math.floor(width / (size * (mono ? 0.61 : 0.55)));
  return s.length <= max ? s : `${s.slice(0, Math.max(0, max - 1))}…`;
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function f(n: number): string {
  return String(Math.round(n * 10) / 10);
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function isTransfer(call: Call): boolean {
  return (call.op === 'recv' || call.op === 'send') && call.result > 0 && !call.error;
}

function describeCall(call: Call): string {
  if (call.error) return `${call.op} → ${call.error}`;
  if (call.op === 'interest') return `${call.note ?? 'interest change'}${call.result ? ' (a system call)' : ' (no system call)'}`;
  if (call.result === -1) return `${call.op} → EAGAIN`;
  if (call.op === 'recv' && call.result === 0) return 'recv → 0: end of stream';
  if (call.op === 'accept') return 'accept → a connection';
  return `${call.op} → ${call.result} bytes`;
}
