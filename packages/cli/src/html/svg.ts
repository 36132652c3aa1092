import { esc, Html } from './page.js';

/**
 * Drawing primitives for reports, as inline SVG (no library, no request).
 * `lineChart` is what a report over simulated time needs: step series and
 * labelled markers on a shared x axis.
 */

export interface Series {
  readonly name: string;
  /** [x, y] points; drawn as steps (the value holds until the next point). */
  readonly points: readonly (readonly [number, number])[];
  readonly colour?: string;
}

export interface Marker {
  readonly x: number;
  readonly label: string;
  readonly colour?: string;
}

export interface ChartOptions {
  readonly width?: number;
  readonly height?: number;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly markers?: readonly Marker[];
}

const PAD = { left: 56, right: 16, top: 16, bottom: 40 };

/** A step chart with axes, ticks, markers and a legend. */
export function lineChart(o: ChartOptions): Html {
  const width = o.width ?? 720;
  const height = o.height ?? 280;
  const all = o.series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...all.map((p) => p[0]), ...(o.markers ?? []).map((m) => m.x));
  const yMax = Math.max(1, ...all.map((p) => p[1]));
  const w = width - PAD.left - PAD.right;
  const ht = height - PAD.top - PAD.bottom;
  const X = (x: number) => PAD.left + (x / xMax) * w;
  const Y = (y: number) => PAD.top + ht - (y / yMax) * ht;
  const parts: string[] = [];
  parts.push(
    `<line x1="${PAD.left}" y1="${PAD.top + ht}" x2="${PAD.left + w}" y2="${PAD.top + ht}" stroke="#888"/>`,
    `<line x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${PAD.top + ht}" stroke="#888"/>`,
  );
  for (let i = 0; i <= 4; i++) {
    const xv = (xMax * i) / 4;
    const yv = (yMax * i) / 4;
    parts.push(
      `<text x="${X(xv)}" y="${PAD.top + ht + 14}" text-anchor="middle">${esc(round(xv))}</text>`,
      `<text x="${PAD.left - 6}" y="${Y(yv) + 4}" text-anchor="end">${esc(round(yv))}</text>`,
    );
  }
  parts.push(
    `<text x="${PAD.left + w / 2}" y="${height - 6}" text-anchor="middle">${esc(o.xLabel)}</text>`,
    `<text x="12" y="${PAD.top + ht / 2}" transform="rotate(-90 12 ${PAD.top + ht / 2})" text-anchor="middle">${esc(o.yLabel)}</text>`,
  );
  (o.markers ?? []).forEach((m, i) => {
    const c = m.colour ?? '#a15c00';
    // Staggered labels, so markers close together stay readable.
    const ly = PAD.top + 10 + (i % 3) * 12;
    parts.push(
      `<line class="marker" x1="${X(m.x)}" y1="${PAD.top}" x2="${X(m.x)}" y2="${PAD.top + ht}" stroke="${c}" stroke-dasharray="4 3"/>`,
      `<text x="${X(m.x) + 3}" y="${ly}" fill="${c}">${esc(m.label)}</text>`,
    );
  });
  o.series.forEach((s, i) => {
    const c = s.colour ?? ['#2458a6', '#b42318', '#157347'][i % 3]!;
    let d = '';
    s.points.forEach(([x, y], j) => {
      d += j === 0 ? `M${X(x)},${Y(y)}` : `H${X(x)}V${Y(y)}`;
    });
    parts.push(
      `<path class="series" d="${d}" fill="none" stroke="${c}" stroke-width="2"/>`,
      `<text x="${PAD.left + w - 4}" y="${PAD.top + ht - 8 - i * 14}" text-anchor="end" fill="${c}">${esc(s.name)}</text>`,
    );
  });
  return new Html(
    `<svg class="chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img">${parts.join('')}</svg>`,
  );
}

function round(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
