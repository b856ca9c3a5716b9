/**
 * A small SVG line chart of one or several series, the Lab twin of the service page's
 * chart.js: axes with round ticks, a legend when there are several series, each line's
 * last value (unless another's is written close to it), and at most two vertices a pixel
 * column however many points (the column's lowest and highest: every spike is kept).
 * Coloured by JupyterLab's own variables (base.css), so it reads in the light and the dark
 * theme. Made with createElementNS and textContent only: a metric's name is user data.
 */

const SVG = 'http://www.w3.org/2000/svg';
const PALETTE = 6; // .jp-NotebookJobs-chart .chart-s0 … s5 in base.css
const H = 160;

export interface IPoint {
  x: number;
  y: number;
}

export interface ISeries {
  name: string;
  points: IPoint[];
}

export interface IChartOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** The palette's colour of the first series (then the next ones): a metric keeps its own across charts. */
  color?: number;
}

function svg(tag: string, attrs: Record<string, string | number> = {}, text?: string): SVGElement {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    node.setAttribute(k, String(v));
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** A value as a person reads it: five significant digits, exponents only far from 1. */
export function formatValue(v: number): string {
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e6 || a < 1e-3) ? v.toExponential(2) : String(+v.toPrecision(5));
}

/** Round ticks covering [lo, hi]: 1, 2, 2.5 or 5 times a power of ten apart, and at least `minStep`. */
export function niceTicks(
  lo: number, hi: number, count: number, minStep = 0
): { lo: number; hi: number; ticks: number[]; step: number } {
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(minStep, [1, 2, 2.5, 5, 10].map(m => m * power).find(s => s >= raw) as number);
  const from = Math.floor(lo / step + 1e-9) * step;
  const to = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = from; v <= to + step * 1e-9; v += step) {
    ticks.push(+v.toPrecision(12));
  }
  return { lo: from, hi: to, ticks, step };
}

function tickText(v: number, step: number): string {
  const a = Math.abs(step);
  if (a >= 1e6 || a < 1e-3) {
    return v === 0 ? '0' : v.toExponential(1);
  }
  let decimals = Math.max(0, Math.ceil(-Math.log10(a) - 1e-9));
  if (!Number.isInteger(+(a * 10 ** decimals).toFixed(6))) {
    decimals++; // a step of 2.5, 0.25
  }
  return String(+v.toFixed(decimals));
}

/** The points worth drawing: past two a pixel column, each column's lowest and highest, in x order. */
export function downsample(points: IPoint[], toPixel: (x: number) => number): IPoint[] {
  const columns = Math.abs(toPixel(points[points.length - 1].x) - toPixel(points[0].x)) + 1;
  if (points.length <= 2 * columns) {
    return points;
  }
  const out: IPoint[] = [];
  let column: number | null = null;
  let low = points[0];
  let high = points[0];
  const flush = () => out.push(...(low === high ? [low] : low.x < high.x ? [low, high] : [high, low]));
  for (const p of points) {
    const c = Math.floor(toPixel(p.x));
    if (c !== column) {
      if (column !== null) {
        flush();
      }
      column = c;
      low = high = p;
    } else if (p.y < low.y) {
      low = p;
    } else if (p.y > high.y) {
      high = p;
    }
  }
  flush();
  return out;
}

/** A live chart: `append` a point (a step seen again replaces its point), drawn once per animation frame. */
export class LineChart {
  readonly node: HTMLElement;
  private series: ISeries[] = [];
  private pending: number | null = null;

  constructor(private readonly options: IChartOptions = {}) {
    this.node = document.createElement('figure');
    this.node.className = 'jp-NotebookJobs-chart';
    this.draw();
  }

  update(series: ISeries[]): void {
    this.series = series.map(s => ({ name: s.name, points: [...s.points].sort((a, b) => a.x - b.x) }));
    this.later();
  }

  append(name: string, point: IPoint): void {
    let s = this.series.find(d => d.name === name);
    if (!s) {
      s = { name, points: [] };
      this.series.push(s);
    }
    const points = s.points;
    let i = points.length;
    while (i > 0 && points[i - 1].x > point.x) {
      i--;
    }
    if (i > 0 && points[i - 1].x === point.x) {
      points[i - 1] = point;
    } else {
      points.splice(i, 0, point);
    }
    this.later();
  }

  private later(): void {
    if (this.pending === null) {
      this.pending = requestAnimationFrame(() => this.draw());
    }
  }

  private draw(): void {
    this.pending = null;
    const { title, xLabel, yLabel, color = 0 } = this.options;
    const W = this.node.clientWidth || 300; // as wide as the panel: its text at its own size, not scaled down
    const legendOn = this.series.length > 1;
    const left = 50;
    const right = 52;
    const top = 12 + (title ? 14 : 0) + (legendOn ? 14 : 0);
    const bottom = 32;
    const all = this.series.flatMap(s => s.points);
    let [x0, x1] = all.length ? [Math.min(...all.map(p => p.x)), Math.max(...all.map(p => p.x))] : [0, 1];
    if (x0 === x1) {
      [x0, x1] = [x0 - 1, x1 + 1];
    }
    let [y0, y1] = all.length ? [Math.min(...all.map(p => p.y)), Math.max(...all.map(p => p.y))] : [0, 1];
    if (y0 === y1) {
      const pad = Math.abs(y0) / 10 || 1;
      [y0, y1] = [y0 - pad, y1 + pad];
    }
    const ys = niceTicks(y0, y1, 3);
    const x = (v: number) => left + ((v - x0) / (x1 - x0)) * (W - left - right);
    const y = (v: number) => H - bottom - ((v - ys.lo) / (ys.hi - ys.lo)) * (H - top - bottom);

    const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title ?? '' });
    if (title) {
      chart.append(svg('title', {}, title), svg('text', { class: 'chart-title', x: left, y: 11 }, title));
    }
    const yAxis = svg('g', { class: 'chart-axis chart-y' });
    for (const v of ys.ticks) {
      yAxis.append(
        svg('line', { class: 'chart-grid', x1: left, x2: W - right, y1: y(v), y2: y(v) }),
        svg('text', { class: 'chart-tick', x: left - 4, y: y(v) + 3, 'text-anchor': 'end' }, tickText(v, ys.step))
      );
    }
    if (yLabel) {
      yAxis.append(svg('text', { class: 'chart-label', transform: `translate(9 ${(top + H - bottom) / 2}) rotate(-90)`, 'text-anchor': 'middle' }, yLabel));
    }
    const xAxis = svg('g', { class: 'chart-axis chart-x' });
    xAxis.append(svg('line', { x1: left, x2: W - right, y1: H - bottom, y2: H - bottom }));
    // (steps are whole numbers: no tick between two of them)
    const whole = this.series.every(s => s.points.every(p => Number.isInteger(p.x))) ? 1 : 0;
    const xs = niceTicks(x0, x1, 4, whole);
    for (const v of xs.ticks.filter(t => t >= x0 && t <= x1)) {
      xAxis.append(
        svg('line', { x1: x(v), x2: x(v), y1: H - bottom, y2: H - bottom + 4 }),
        svg('text', { class: 'chart-tick', x: x(v), y: H - bottom + 14, 'text-anchor': 'middle' }, tickText(v, xs.step))
      );
    }
    if (xLabel) {
      xAxis.append(svg('text', { class: 'chart-label', x: (left + W - right) / 2, y: H - 3, 'text-anchor': 'middle' }, xLabel));
    }
    chart.append(yAxis, xAxis);
    const legend = svg('g', { class: 'chart-legend', transform: `translate(${left} ${title ? 25 : 11})` });
    let at = 0;
    const labelled: number[] = []; // the heights of the last values written: one close to another is left out
    this.series.forEach((s, i) => {
      const cls = `chart-series chart-s${(color + i) % PALETTE}`;
      const g = svg('g', { class: cls, 'data-name': s.name, 'data-points': s.points.length });
      if (s.points.length) {
        const drawn = downsample(s.points, x);
        const last = s.points[s.points.length - 1];
        g.append(svg('polyline', { points: drawn.map(p => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ') }));
        if (labelled.every(taken => Math.abs(taken - y(last.y)) >= 10)) {
          labelled.push(y(last.y));
          g.append(svg('text', { class: 'chart-last', x: x(last.x) + 4, y: y(last.y) + 3 }, formatValue(last.y)));
        }
      }
      chart.append(g);
      if (legendOn) {
        const item = svg('g', { class: cls, transform: `translate(${at} 0)` });
        item.append(svg('line', { x1: 0, x2: 12, y1: -3, y2: -3 }), svg('text', { x: 16, y: 0 }, s.name));
        legend.append(item);
        at += 26 + 6 * s.name.length; // an estimate: the chart may not be shown yet to measure
      }
    });
    if (legendOn) {
      chart.append(legend);
    }
    this.node.replaceChildren(chart);
  }
}
