/**
 * A report as one self-contained HTML page: the picture (inline SVG), the summary table, what it shows,
 * and the full text timeline folded underneath. No script, no stylesheet or font from the network.
 */
import type { Report } from './model';
import { escapeXml as esc, renderSvg } from './picture';
import { formatValue, renderText, summaryValue } from './render';

export function renderHtml(report: Report): string {
  const header = ['mechanism', ...report.columns.map((c) => c.label)];
  const rows = report.traces.map((t) => [t.label, ...report.columns.map((c) => (t.summary.error ? '-' : formatValue(summaryValue(t.summary, c.key))))]);
  const table = `<table><thead><tr>${header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map((cell, i) => (i === 0 ? `<th>${esc(cell)}</th>` : `<td>${esc(cell)}</td>`)).join('')}</tr>`).join('') +
    '</tbody></table>';
  const conclusions = report.conclusions.length
    ? `<h2>What this shows</h2><ul>${report.conclusions.map((c) => `<li>${esc(c)}</li>`).join('')}</ul>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>iomux trace ${esc(report.scenario)}</title>
<style>
body { font-family: system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif; margin: 24px; color: #1b1b1b; }
h1 { font-size: 20px; margin: 0 0 8px; }
h2 { font-size: 16px; margin: 24px 0 8px; }
.picture { overflow-x: auto; border: 1px solid #dadce0; }
.picture svg { display: block; max-width: none; }
table { border-collapse: collapse; font-size: 14px; }
th, td { border: 1px solid #dadce0; padding: 4px 10px; text-align: right; }
th:first-child, thead th { text-align: left; }
pre { font-size: 12px; overflow-x: auto; background: #f6f8fa; padding: 12px; }
</style>
</head>
<body>
<h1>iomux trace ${esc(report.scenario)}</h1>
<p>${esc(report.title)}</p>
<div class="picture">
${renderSvg(report)}</div>
<h2>Counts</h2>
${table}
${conclusions}
<details><summary>The text timeline (<code>iomux trace ${esc(report.scenario)} --rows 0</code>)</summary>
<pre>${esc(renderText(report, { maxRows: 0 }))}</pre>
</details>
</body>
</html>
`;
}
