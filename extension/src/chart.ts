/**
 * A small SVG line chart of one or several series, the Lab twin of the service page's
 * chart.js: axes with round ticks, a legend when there are several series, each line's
 * last value (unless another's is written close to it), the values under the pointer (or
 * the arrow keys), and at most two vertices a pixel column however many points (the
 * column's lowest and highest: every spike is kept). Redrawn when its box is resized.
 * Coloured by JupyterLab's own variables (base.css), so it reads in the light and the dark
 * theme. Made with createElementNS and textContent only: a metric's name is user data.
 *
 * The twins keep one contract, tested on both (src/__tests__/chartContract.spec.ts, with
 * the cases in chartContract.cases.json): `layout`, `niceTicks`, `formatValue`,
 * `tickText`, `fitLabel`, `downsample` and `nearest` answer the same; docs/charts.md says why twins.
 */

const SVG = 'http://www.w3.org/2000/svg';
const PALETTE = 6; // .jp-NotebookJobs-chart .chart-s0 … s5 in base.css
const H = 160;
/** The widest a character of the chart's 10px text is (an estimate: the chart may not be shown to measure). */
const CHAR_WIDTH = 6.5;
/** The widest a character of the axis labels' 10px text is, on average (their names are cut to fit, whole in a tooltip). */
const LABEL_CHAR_WIDTH = 6;
/** Past this many lines, the readout names the first ones and how many more. */
const READOUT_LINES = 5;
/** The least time between two redraws while the box is being resized. */
const RESIZE_MS = 100;

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

/** What `layout` places: a box's size, the least margins around the plot, and what must fit. */
export interface ILayoutInput {
  width: number;
  height: number;
  top: number;
  right: number;
  bottom: number;
  left: number;
  /** Each line's last value is written past its end: the right margin holds the widest. */
  lastValue?: boolean;
  /** The widest a character of the last values is, in the drawing's units. */
  charWidth: number;
  /** About how many intervals the y axis has. */
  yTicks: number;
  /** A value the y axis must show (e.g. 0). */
  yMin?: number;
}

export interface ITicks {
  lo: number;
  hi: number;
  ticks: number[];
  step: number;
}

/** The plot's edges in the drawing (`right` and `bottom` are coordinates, not margins) and its domains. */
export interface ILayout {
  left: number;
  right: number;
  top: number;
  bottom: number;
  x0: number;
  x1: number;
  ys: ITicks;
}

/** The gap between a line's end and its last value. */
export const LAST_GAP = 6;

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

/**
 * The y axis's name, turned up its left side about `cy` and cut to the room there in a drawing
 * `height` high; a name cut short is whole in its tooltip.
 */
function yAxisLabel(name: string, x: number, cy: number, height: number, charWidth: number): SVGElement {
  const shown = fitLabel(name, 2 * Math.min(cy, height - cy) - 4, charWidth);
  const label = svg('text', { class: 'chart-label', transform: `translate(${x} ${cy}) rotate(-90)`, 'text-anchor': 'middle' }, shown);
  if (shown !== name) {
    label.append(svg('title', {}, name));
  }
  return label;
}

/** Fit a readout's backdrop to its words, with a margin (once they are drawn, to be measured). */
function behind(back: SVGElement, text: SVGGraphicsElement): void {
  const box = text.getBBox();
  for (const [k, v] of Object.entries({ x: box.x - 3, y: box.y - 2, width: box.width + 6, height: box.height + 4 })) {
    back.setAttribute(k, String(v));
  }
}

/** A value as a person reads it: five significant digits, exponents only far from 1. */
export function formatValue(v: number): string {
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e6 || a < 1e-3) ? v.toExponential(2) : String(+v.toPrecision(5));
}

/** Round ticks covering [lo, hi]: 1, 2, 2.5 or 5 times a power of ten apart, and at least `minStep`. */
export function niceTicks(lo: number, hi: number, count: number, minStep = 0): ITicks {
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

/** A tick's value: as many decimals as its step needs, no float noise (0.30000000000000004). */
export function tickText(v: number, step: number): string {
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

/**
 * An axis label that fits `room` (characters `charWidth` wide): `text` itself, or its start and "…"
 * (the whole name is the label's tooltip then).
 */
export function fitLabel(text: string, room: number, charWidth: number): string {
  const fits = Math.floor(room / charWidth);
  return text.length <= fits ? text : text.slice(0, Math.max(1, fits - 1)) + '…';
}

/**
 * Where the plot goes in a box, and its domains: x over the points (one step either side of a
 * lone one), y widened to round ticks; the right margin at least as wide as the widest last value
 * (so none is cut at the box's edge).
 */
export function layout(series: ISeries[], box: ILayoutInput): ILayout {
  const all = series.flatMap(s => s.points);
  let [x0, x1] = all.length ? [Math.min(...all.map(p => p.x)), Math.max(...all.map(p => p.x))] : [0, 1];
  if (x0 === x1) {
    [x0, x1] = [x0 - 1, x1 + 1];
  }
  const values = all.map(p => p.y).concat(box.yMin === undefined ? [] : [box.yMin]);
  let [y0, y1] = values.length ? [Math.min(...values), Math.max(...values)] : [0, 1];
  if (y0 === y1) {
    const pad = Math.abs(y0) / 10 || 1;
    [y0, y1] = [y0 - pad, y1 + pad];
  }
  const lasts = box.lastValue ? series.filter(s => s.points.length).map(s => formatValue(s.points[s.points.length - 1].y)) : [];
  const widest = Math.max(0, ...lasts.map(t => t.length));
  const right = Math.max(box.right, widest ? LAST_GAP + Math.ceil(widest * box.charWidth) + 2 : 0);
  return { left: box.left, right: box.width - right, top: box.top, bottom: box.height - box.bottom, x0, x1, ys: niceTicks(y0, y1, box.yTicks) };
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

/** The point of sorted `points` whose pixel is nearest `px` (the left one of two as near). */
export function nearest(points: IPoint[], px: number, toPixel: (x: number) => number): IPoint {
  let lo = 0;
  let hi = points.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (toPixel(points[mid].x) < px) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo > 0 && px - toPixel(points[lo - 1].x) <= toPixel(points[lo].x) - px ? points[lo - 1] : points[lo];
}

/** The readout of one drawing: show the values at a step (null: hide it), and the steps there are. */
interface IReadout {
  show: (at: number | null) => void;
  steps: IPoint[];
  toStep: (clientX: number) => number | null;
}

/**
 * A live chart: `append` a point (a step seen again replaces its point), drawn once per animation
 * frame, and again at its box's new width when that changes.
 */
export class LineChart {
  readonly node: HTMLElement;
  private series: ISeries[] = [];
  private pending: number | null = null;
  /** The width it was drawn at, and when: a resize to another width redraws it, at most every RESIZE_MS. */
  private drawnWidth = 0;
  private drawnAt = 0;
  private resized = 0;
  private current: IReadout | null = null;
  /** The step the readout shows (kept across redraws: a live point does not take it away), or null. */
  private readoutX: number | null = null;

  constructor(private readonly options: IChartOptions = {}) {
    this.node = document.createElement('figure');
    this.node.className = 'jp-NotebookJobs-chart';
    // the figure, not its drawing, takes the pointer and the focus: a redraw keeps both
    this.node.tabIndex = 0;
    this.node.addEventListener('pointermove', e => this.current?.show(this.current.toStep(e.clientX)));
    this.node.addEventListener('pointerleave', () => this.current?.show(null));
    this.node.addEventListener('blur', () => this.current?.show(null));
    this.node.addEventListener('keydown', e => this.onKey(e));
    new ResizeObserver(() => this.onResize()).observe(this.node);
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

  private onResize(): void {
    const width = this.node.clientWidth;
    if (!width || width === this.drawnWidth || this.resized) {
      return; // hidden, the same, or a redraw already due
    }
    this.resized = window.setTimeout(() => {
      this.resized = 0;
      this.later();
    }, Math.max(0, this.drawnAt + RESIZE_MS - performance.now()));
  }

  /** The arrow keys move the readout from step to step (Home, End: the first, the last); Escape hides it. */
  private onKey(e: KeyboardEvent): void {
    const steps = this.current?.steps;
    if (!steps?.length) {
      return;
    }
    const i = this.readoutX === null ? -1 : steps.findIndex(p => p.x === this.readoutX);
    const to: Record<string, number> = {
      ArrowRight: Math.min(steps.length - 1, i + 1),
      ArrowLeft: i < 0 ? steps.length - 1 : Math.max(0, i - 1),
      Home: 0,
      End: steps.length - 1
    };
    if (e.key === 'Escape') {
      this.current!.show(null);
    } else if (e.key in to) {
      e.preventDefault();
      this.current!.show(steps[to[e.key]].x);
    }
  }

  private draw(): void {
    this.pending = null;
    this.drawnAt = performance.now();
    const { title, xLabel, yLabel, color = 0 } = this.options;
    const W = (this.drawnWidth = this.node.clientWidth) || 300; // as wide as its box: text at its own size, not scaled
    const legendOn = this.series.length > 1;
    const plot = layout(this.series, {
      width: W,
      height: H,
      top: 12 + (title ? 14 : 0) + (legendOn ? 14 : 0),
      right: 16,
      bottom: 32,
      left: 50,
      lastValue: true,
      charWidth: CHAR_WIDTH,
      yTicks: 3
    });
    const { x0, x1, ys } = plot;
    const x = (v: number) => plot.left + ((v - x0) / (x1 - x0)) * (plot.right - plot.left);
    const y = (v: number) => plot.bottom - ((v - ys.lo) / (ys.hi - ys.lo)) * (plot.bottom - plot.top);

    const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title ?? '' });
    if (title) {
      chart.append(svg('title', {}, title), svg('text', { class: 'chart-title', x: plot.left, y: 11 }, title));
    }
    const yAxis = svg('g', { class: 'chart-axis chart-y' });
    for (const v of ys.ticks) {
      yAxis.append(
        svg('line', { class: 'chart-grid', x1: plot.left, x2: plot.right, y1: y(v), y2: y(v) }),
        svg('text', { class: 'chart-tick', x: plot.left - 4, y: y(v) + 3, 'text-anchor': 'end' }, tickText(v, ys.step))
      );
    }
    if (yLabel) {
      yAxis.append(yAxisLabel(yLabel, 9, (plot.top + plot.bottom) / 2, H, LABEL_CHAR_WIDTH));
    }
    const xAxis = svg('g', { class: 'chart-axis chart-x' });
    xAxis.append(svg('line', { x1: plot.left, x2: plot.right, y1: plot.bottom, y2: plot.bottom }));
    // (steps are whole numbers: no tick between two of them)
    const whole = this.series.every(s => s.points.every(p => Number.isInteger(p.x))) ? 1 : 0;
    const xs = niceTicks(x0, x1, 4, whole);
    for (const v of xs.ticks.filter(t => t >= x0 && t <= x1)) {
      xAxis.append(
        svg('line', { x1: x(v), x2: x(v), y1: plot.bottom, y2: plot.bottom + 4 }),
        svg('text', { class: 'chart-tick', x: x(v), y: plot.bottom + 14, 'text-anchor': 'middle' }, tickText(v, xs.step))
      );
    }
    if (xLabel) {
      xAxis.append(svg('text', { class: 'chart-label', x: (plot.left + plot.right) / 2, y: H - 3, 'text-anchor': 'middle' }, xLabel));
    }
    chart.append(yAxis, xAxis);
    const legend = svg('g', { class: 'chart-legend', transform: `translate(${plot.left} ${title ? 25 : 11})` });
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
          g.append(svg('text', { class: 'chart-last', x: x(last.x) + LAST_GAP, y: y(last.y) + 3 }, formatValue(last.y)));
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
    this.current = this.readout(chart, plot, x, y);
    this.node.replaceChildren(chart);
    if (this.readoutX !== null) {
      this.current?.show(this.readoutX);
    }
  }

  /**
   * The values at a step, drawn over the plot: a rule there, a dot on each line at its nearest
   * point, and the step with each line's value in words (also the figure's accessible description).
   */
  private readout(chart: SVGElement, plot: ILayout, x: (v: number) => number, y: (v: number) => number): IReadout | null {
    const lines = this.series.filter(s => s.points.length);
    if (!lines.length) {
      return null;
    }
    const steps = [...new Set(lines.flatMap(s => s.points.map(p => p.x)))].sort((a, b) => a - b).map(v => ({ x: v, y: 0 }));
    const rule = svg('line', { class: 'chart-rule', y1: plot.top, y2: plot.bottom });
    const dots = lines.map(() => svg('circle', { class: 'chart-hover-dot', r: 3 }));
    const text = svg('text', { class: 'chart-readout', y: plot.top + 10 });
    const back = svg('rect', { class: 'chart-readout-back', rx: 3 }); // (the theme's own background behind the words)
    const layer = svg('g', { class: 'chart-hover', visibility: 'hidden' });
    layer.append(rule, ...dots, back, text);
    chart.append(layer);
    const { xLabel, color = 0 } = this.options;
    const xName = xLabel || 'x';
    const show = (at: number | null) => {
      this.readoutX = at;
      if (at === null) {
        layer.setAttribute('visibility', 'hidden');
        this.node.removeAttribute('aria-description');
        return;
      }
      const px = x(at);
      const words = lines.map((s, i) => {
        const p = nearest(s.points, px, x);
        dots[i].setAttribute('cx', String(x(p.x)));
        dots[i].setAttribute('cy', String(y(p.y)));
        return (lines.length > 1 ? `${s.name}: ` : '') + formatValue(p.y);
      });
      rule.setAttribute('x1', String(px));
      rule.setAttribute('x2', String(px));
      // on the side with room: the step (with a lone line's value)
      const right = px > (plot.left + plot.right) / 2;
      const tx = String(px + (right ? -6 : 6));
      const head = `${xName} ${formatValue(at)}`;
      // a row a line, keyed by its colour; past READOUT_LINES, how many more
      const shown = lines.length > 1 ? lines.slice(0, READOUT_LINES) : [];
      const rows = shown.map((s, i) => {
        const row = svg('tspan', { x: tx, dy: 12 });
        row.append(svg('tspan', { class: `chart-key chart-s${(color + this.series.indexOf(s)) % PALETTE}` }, '● '), words[i]);
        return row;
      });
      if (lines.length > 1 && lines.length > shown.length) {
        rows.push(svg('tspan', { x: tx, dy: 12 }, `(+${lines.length - shown.length})`));
      }
      text.setAttribute('x', tx);
      text.setAttribute('text-anchor', right ? 'end' : 'start');
      text.replaceChildren(svg('tspan', { x: tx }, lines.length > 1 ? head : `${head}: ${words[0]}`), ...rows);
      layer.setAttribute('visibility', 'visible');
      behind(back, text as SVGGraphicsElement);
      this.node.setAttribute('aria-description', `${head}: ${words.join(', ')}`);
    };
    const toStep = (clientX: number) => {
      const box = chart.getBoundingClientRect();
      const px = ((clientX - box.left) * Number(chart.getAttribute('viewBox')!.split(' ')[2])) / box.width;
      return px < plot.left || px > plot.right ? null : nearest(steps, px, x).x;
    };
    return { show, steps, toStep };
  }
}
