/**
 * A self-contained HTML page for people (report.html, compare.html): inline CSS, charts as inline
 * SVG, nothing fetched from anywhere. Tables are the same TableData the terminal and Markdown get.
 */
import type { TableData } from './report';

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Marks a cell by what it says: a missed target, a met one, a change beyond the noise. */
function cellClass(text: string): string {
  if (text === 'NO' || text.startsWith('worse')) return ' class="bad"';
  if (text === 'yes' || text.startsWith('better')) return ' class="good"';
  return '';
}

export function htmlTable(t: TableData, notes: string[] = []): string {
  const aligns = t.aligns ?? t.head.map((_, i) => (i === 0 ? 'left' : 'right'));
  const cell = (tag: 'td' | 'th', text: string, i: number) =>
    `<${tag}${aligns[i] === 'right' ? ' class="num"' : ''}${tag === 'td' ? cellClass(text) : ''}>${escapeHtml(text)}</${tag}>`;
  const body = t.rows.length === 0 ? '' : `<div class="scroll"><table>
<thead><tr>${t.head.map((h, i) => cell('th', h, i)).join('')}</tr></thead>
<tbody>
${t.rows.map((row) => `<tr>${row.map((c, i) => cell('td', c, i)).join('')}</tr>`).join('\n')}
</tbody></table></div>`;
  const below = [...(t.footer ?? []), ...notes];
  return `<h3>${escapeHtml(t.title)}</h3>
${body}
${below.length > 0 ? `<ul class="notes">${below.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` : ''}`;
}

/**
 * A chart inline. Every SVG's ids get a prefix of their own (`key`, unique in the page): vega numbers
 * its clip paths from 1 in each drawing, and two SVGs in one document with the same id would clip each
 * other's marks.
 */
export function htmlFigure(svg: string, caption: string, key: string): string {
  const prefix = `${key}-`;
  const unique = svg
    .replace(/\bid="([^"]+)"/g, `id="${prefix}$1"`)
    .replace(/url\(#([^)]+)\)/g, `url(#${prefix}$1)`)
    .replace(/href="#([^"]+)"/g, `href="#${prefix}$1"`)
    .replace(/^<\?xml[^>]*>\s*/, '');
  return `<figure>${unique.replace(/^<svg/, `<svg role="img" aria-label="${escapeHtml(caption)}"`)}<figcaption>${escapeHtml(caption)}</figcaption></figure>`;
}

const STYLE = `
:root { color-scheme: light; --ink: #1d232a; --muted: #5b6673; --rule: #d8dee4; --good: #1a7f37; --bad: #cf222e; --band: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: #fff; }
header, main, nav { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; border-bottom: 1px solid var(--rule); }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 40px 0 8px; padding-top: 8px; border-top: 2px solid var(--ink); }
h3 { font-size: 15px; margin: 20px 0 6px; }
.sub { color: var(--muted); margin: 0 0 12px; }
nav { padding-top: 10px; padding-bottom: 10px; font-size: 14px; }
nav a { margin-right: 14px; color: #0969da; text-decoration: none; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 12px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.meaning { background: var(--band); border-left: 4px solid #0969da; padding: 8px 16px; margin: 12px 0; }
.meaning p { margin: 6px 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid var(--rule); white-space: nowrap; text-align: left; }
th { background: var(--band); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.good { color: var(--good); font-weight: 600; }
td.bad { color: var(--bad); font-weight: 600; }
ul.notes { color: var(--muted); font-size: 13px; margin: 4px 0 12px; padding-left: 20px; }
figure { margin: 16px 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 13px; }
code { font: 13px ui-monospace, "DejaVu Sans Mono", monospace; background: var(--band); padding: 1px 4px; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 10px; font-weight: 600; }
.verdict.good { background: #dafbe1; color: var(--good); }
.verdict.bad { background: #ffebe9; color: var(--bad); }
footer { max-width: 1200px; margin: 40px auto; padding: 12px 24px; color: var(--muted); font-size: 13px; border-top: 1px solid var(--rule); }
`;

export interface PageSection {
  id: string;
  title: string;
  html: string;
}

/** The whole page: header, a link per section, the sections, a footer. */
export function htmlPage(title: string, subtitle: string, sections: PageSection[], footer: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>${escapeHtml(title)}</h1><p class="sub">${escapeHtml(subtitle)}</p></header>
<nav>${sections.map((s) => `<a href="#${s.id}">${escapeHtml(s.title)}</a>`).join('')}</nav>
<main>
${sections.map((s) => `<section id="${s.id}"><h2>${escapeHtml(s.title)}</h2>\n${s.html}</section>`).join('\n')}
</main>
<footer>${escapeHtml(footer)}</footer>
</body>
</html>
`;
}

export function meaningBlock(lines: string[]): string {
  return lines.length === 0 ? '' : `<div class="meaning"><strong>What this means</strong>${lines.map((l) => `<p>${escapeHtml(l)}</p>`).join('')}</div>`;
}

export function factList(facts: [string, string][]): string {
  return `<dl class="facts">${facts.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`;
}
