/**
 * Self-contained HTML reports: one file, every style and script inline, and
 * a Content-Security-Policy that forbids the browser any request at all
 * (no CDN, no font, no image fetch), so a report works offline and leaks
 * nothing. Reports are strings built from small pieces; nothing here knows
 * about walks or transitions, so any command can add a report.
 */

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text made safe for HTML content and attribute values. */
export function esc(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** An HTML fragment that is already safe: what the builders below return. */
export class Html {
  constructor(readonly html: string) {}
  toString(): string {
    return this.html;
  }
}

/** Marks a string as safe HTML; only for markup this module built or escaped (SVG, say). */
export function raw(s: string): Html {
  return new Html(s);
}

type Child = Html | string | number;
type Attrs = Readonly<Record<string, string | number | boolean | undefined>>;

/** `<tag attrs>children</tag>`; text children are escaped, Html children kept. */
export function h(tag: string, attrs: Attrs, ...children: Child[]): Html {
  let a = '';
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    a += v === true ? ` ${k}` : ` ${k}="${esc(v)}"`;
  }
  const inner = children.map((c) => (c instanceof Html ? c.html : esc(c))).join('');
  return new Html(`<${tag}${a}>${inner}</${tag}>`);
}

/** Joins fragments. */
export function join(parts: readonly Html[]): Html {
  return new Html(parts.map((p) => p.html).join(''));
}

/** A table: header cells, then rows of cells; `rowAttrs` (e.g. data-target) per row. */
export function table(
  headers: readonly string[],
  rows: readonly (readonly Child[])[],
  rowAttrs: (i: number) => Attrs = () => ({}),
  attrs: Attrs = {},
): Html {
  return h(
    'table',
    attrs,
    h('thead', {}, h('tr', {}, ...headers.map((x) => h('th', {}, x)))),
    h('tbody', {}, ...rows.map((r, i) => h('tr', rowAttrs(i), ...r.map((c) => h('td', {}, c))))),
  );
}

export interface Section {
  readonly id: string;
  readonly title: string;
  readonly body: Html;
}

export interface Page {
  readonly title: string;
  readonly subtitle?: string;
  readonly sections: readonly Section[];
}

// No request of any kind: everything the page needs is in it.
const CSP =
  "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

const CSS = `
:root { --fg:#1d232a; --muted:#5b6570; --line:#d5dae0; --bad:#b42318; --good:#157347; --warn:#a15c00; --accent:#2458a6; --bg:#fff; --panel:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); margin: 0; }
header { padding: 16px 24px; border-bottom: 1px solid var(--line); }
header h1 { font-size: 20px; margin: 0; }
header p { margin: 4px 0 0; color: var(--muted); }
nav { padding: 8px 24px; border-bottom: 1px solid var(--line); background: var(--panel); }
nav a { margin-right: 16px; color: var(--accent); text-decoration: none; }
main { padding: 8px 24px 48px; }
section { margin: 24px 0; }
h2 { font-size: 17px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 8px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--panel); }
tr[data-target] { cursor: pointer; }
tr[data-target]:hover, tr.selected { background: #e8f0fe; }
code, .mono { font-family: ui-monospace, monospace; font-size: 12.5px; }
.bad { color: var(--bad); font-weight: 600; }
.good { color: var(--good); }
.warn { color: var(--warn); }
.muted { color: var(--muted); }
.panel { overflow-x: auto; display: none; border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; background: var(--bg); }
.panel.shown { display: block; }
.tasklist { max-height: 45vh; overflow: auto; display: inline-block; margin-bottom: 12px; }
.panels svg { display: block; margin-bottom: 8px; }
svg text { font-family: ui-monospace, monospace; font-size: 11.5px; }
`;

// Drill-down: a click on an element with data-target shows that panel and hides its siblings.
const SCRIPT = `
document.addEventListener('click', function (ev) {
  var row = ev.target.closest('[data-target]');
  if (!row) return;
  var panel = document.getElementById(row.getAttribute('data-target'));
  if (!panel) return;
  panel.parentElement.querySelectorAll(':scope > .panel').forEach(function (p) { p.classList.remove('shown'); });
  panel.classList.add('shown');
  row.parentElement.querySelectorAll('[data-target]').forEach(function (r) { r.classList.remove('selected'); });
  row.classList.add('selected');
});
`;

/** The whole document. */
export function renderPage(page: Page): string {
  const nav = page.sections.map((s) => `<a href="#${esc(s.id)}">${esc(s.title)}</a>`).join('');
  const body = page.sections
    .map((s) => `<section id="${esc(s.id)}"><h2>${esc(s.title)}</h2>${s.body.html}</section>`)
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(page.title)}</title>
<style>${CSS}</style>
</head>
<body>
<header><h1>${esc(page.title)}</h1>${page.subtitle !== undefined ? `<p>${esc(page.subtitle)}</p>` : ''}</header>
<nav>${nav}</nav>
<main>
${body}
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
