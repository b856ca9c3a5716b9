/// <reference types="node" />
/**
 * The two charts -- Lab's (chart.ts) and the service page's (hub_service/static/chart.js) -- keep
 * one contract: the same cases, answered the same by both (docs/charts.md says why there are two).
 */
import { readFileSync } from 'fs';
import { join } from 'path';
import { runInNewContext } from 'vm';

import * as lab from '../chart';
import cases from './chartContract.cases.json';

/** The page's chart, as the browser runs it: a classic script that sets window.NJChart. */
function pageChart(): any {
  const window: Record<string, any> = {};
  runInNewContext(readFileSync(join(__dirname, '../../../hub_service/static/chart.js'), 'utf8'), { window });
  return window.NJChart;
}

/** Numbers to twelve digits: float noise (-3.4000000000000004) is no difference between the twins. */
function rounded(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value), (_, v) => (typeof v === 'number' ? +v.toPrecision(12) : v));
}

const page = pageChart();
const twins: [string, any][] = [
  ['Lab (chart.ts)', { ...lab }],
  ['the page (chart.js)', { ...page, tickText: page.formatTick }]
];

describe.each(twins)('the chart of %s', (_, chart) => {
  it.each(cases.layout.map(c => [c.why, c] as const))('lays out: %s', (_why, c) => {
    expect(rounded(chart.layout(c.series, c.box))).toEqual(c.expect);
  });

  it('writes values and ticks as people read them', () => {
    expect(cases.formatValue.map(([v]) => chart.formatValue(v))).toEqual(cases.formatValue.map(([, text]) => text));
    expect(cases.tickText.map(([v, step]) => chart.tickText(v, step))).toEqual(cases.tickText.map(([, , text]) => text));
  });

  it('cuts an axis label to its room, with "…"', () => {
    expect(cases.fitLabel.map(([text, room, width]) => chart.fitLabel(text, room, width))).toEqual(cases.fitLabel.map(c => c[3]));
  });

  it('finds the point nearest the pointer (the left one of two as near)', () => {
    const { points, pixelsPerX, cases: at } = cases.nearest;
    expect(at.map(([px]) => chart.nearest(points, px, (x: number) => x * pixelsPerX).x)).toEqual(at.map(([, x]) => x));
  });

  it("keeps each pixel column's lowest and highest point, in x order", () => {
    const { ys, xPerPixel, kept } = cases.downsample;
    const points = ys.map((y, x) => ({ x, y }));
    expect(chart.downsample(points, (x: number) => x / xPerPixel).map((p: lab.IPoint) => p.x)).toEqual(kept);
  });
});
