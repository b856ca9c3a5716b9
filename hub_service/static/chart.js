// The service's one chart: an SVG line (and bar) chart of one or several series, drawn in the theme's
// own colours (classes styled in jobs.css from Bootstrap's variables), so it reads in light and dark.
// Everything is made with createElementNS and textContent: series names are user data.
//
//   const chart = NJChart.lineChart(box, [{name: "loss", points: [{x: 0, y: 1.2}, …]}],
//                                   {title: "loss", xLabel: "step", yLabel: "value"});
//   chart.append("loss", {x: 1, y: 0.9});   // live: redrawn once per animation frame
//   chart.update([...]);                     // every series anew (a sweep's overlay)
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const PALETTE = 8;  // .chart-s0 … .chart-s7 in jobs.css

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** A round step for about `ticks` intervals over `span`: 1, 2, 2.5 or 5 times a power of ten. */
  function niceStep(span, ticks) {
    const raw = span / ticks, power = 10 ** Math.floor(Math.log10(raw));
    return [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  }

  /** A value as a person reads it: four or five significant digits, exponents only far from 1. */
  function formatValue(v) {
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
    return String(+v.toPrecision(5));
  }

  /** A tick's value: as many decimals as its step needs, no float noise (0.30000000000000004). */
  function formatTick(v, step) {
    const a = Math.abs(step);
    if (a >= 1e6 || a < 1e-3) return v === 0 ? "0" : v.toExponential(1);
    let decimals = Math.max(0, Math.ceil(-Math.log10(a) - 1e-9));
    if (!Number.isInteger(+(a * 10 ** decimals).toFixed(6))) decimals++;  // a step of 2.5, 0.25
    return String(+v.toFixed(decimals));
  }

  /** Ticks at round values covering [lo, hi], at least `minStep` apart: the nice domain and its ticks. */
  function niceTicks(lo, hi, count, minStep = 0) {
    const step = Math.max(minStep, niceStep(hi - lo, count));
    const from = Math.floor(lo / step + 1e-9) * step, to = Math.ceil(hi / step - 1e-9) * step;
    const ticks = [];
    for (let v = from; v <= to + step * 1e-9; v += step) ticks.push(+v.toPrecision(12));
    return {lo: from, hi: to, ticks, step};
  }

  /**
   * The points worth drawing when there are more than two a pixel column: in each column its lowest
   * and highest, in x order -- the line looks the same (every spike kept) and is drawn from at most
   * two vertices a column instead of thousands. `points` sorted by x; `toPixel` maps x to the column.
   */
  function downsample(points, toPixel) {
    const columns = Math.abs(toPixel(points[points.length - 1].x) - toPixel(points[0].x)) + 1;
    if (points.length <= 2 * columns) return points;
    const out = [];
    let column = null, low = null, high = null;
    const flush = () => { if (low) out.push(...(low === high ? [low] : low.x < high.x ? [low, high] : [high, low])); };
    for (const p of points) {
      const c = Math.floor(toPixel(p.x));
      if (c !== column) { flush(); column = c; low = high = p; continue; }
      if (p.y < low.y) low = p;
      if (p.y > high.y) high = p;
    }
    flush();
    return out;
  }

  /** Put `point` into the sorted `points`: a point at an x already there replaces it (a report seen twice). */
  function upsert(points, point) {
    let i = points.length;
    while (i > 0 && points[i - 1].x > point.x) i--;
    if (i > 0 && points[i - 1].x === point.x) points[i - 1] = point;
    else points.splice(i, 0, point);
  }

  /**
   * Draw `series` ([{name, points: [{x, y, title?}], kind?: "line"|"bars", width?, dots?, className?, color?}])
   * in `container`; a series is coloured by its place, or by `color` (an index of the palette). Options: title,
   * xLabel, yLabel, description (the chart's accessible name), className, width/height (of the viewBox;
   * the width is the container's unless given),
   * xDomain [lo, hi], xTicks ((lo, hi) => [{x, label?, className?}]), yMin (a value the y axis must show,
   * e.g. 0), marks ([{x, label, className}]), lastValue (label each line's last value).
   * Returns {update(series), append(name, point), element}.
   */
  function lineChart(container, series, options) {
    const opts = Object.assign({height: 250}, options || {});
    let data = [], pending = null;

    function take(list) {
      data = list.map((s) => Object.assign({}, s, {points: s.points.slice().sort((a, b) => a.x - b.x)}));
    }

    function draw() {
      pending = null;
      // as wide as its box (text at its own size, not scaled down with the drawing), unless told
      const W = opts.width || container.clientWidth || 760, H = opts.height;
      const bottom = 40, left = 62, right = opts.lastValue ? 70 : 16;
      // above the plot: the title, then the legend in as many rows as its names need (a sweep's many runs)
      const rows = data.length > 1 ? legendRows(W - left - 16) : [];
      const legendY = opts.title ? 32 : 14;
      const top = 16 + (opts.title ? 18 : 0) + 18 * rows.length;
      const all = data.flatMap((s) => s.points);
      // the domains: the data's (bars to their end), widened to round values
      let [x0, x1] = opts.xDomain || [Math.min(...all.map((p) => p.x)), Math.max(...data.flatMap(
        (s) => s.points.map((p) => p.x + (s.kind === "bars" ? s.width || 0 : 0))))];
      if (!all.length) [x0, x1] = [0, 1];
      if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
      let ys = all.map((p) => p.y);
      if (opts.yMin !== undefined) ys = ys.concat([opts.yMin]);
      let y0 = ys.length ? Math.min(...ys) : 0, y1 = ys.length ? Math.max(...ys) : 1;
      if (y0 === y1) { const pad = Math.abs(y0) / 10 || 1; y0 -= pad; y1 += pad; }
      const yScale = niceTicks(y0, y1, 4);
      const x = (v) => left + (v - x0) / (x1 - x0) * (W - left - right);
      const y = (v) => H - bottom - (v - yScale.lo) / (yScale.hi - yScale.lo) * (H - top - bottom);

      const chart = svg("svg", {viewBox: `0 0 ${W} ${H}`, role: "img", class: ["nj-chart", opts.className].filter(Boolean).join(" "),
                                "aria-label": opts.description || opts.title || ""});
      if (opts.description || opts.title) chart.append(svg("title", {}, opts.description || opts.title));
      if (opts.title) chart.append(svg("text", {class: "chart-title", x: left, y: 14}, opts.title));
      // y axis: gridlines, ticks and their values
      const yAxis = svg("g", {class: "chart-axis chart-y"});
      for (const v of yScale.ticks) {
        yAxis.append(svg("line", {class: "chart-grid", x1: left, x2: W - right, y1: y(v), y2: y(v)}),
                     svg("text", {class: "chart-tick", x: left - 6, y: y(v) + 4, "text-anchor": "end"}, formatTick(v, yScale.step)));
      }
      yAxis.append(svg("line", {x1: left, x2: left, y1: top, y2: H - bottom}));
      if (opts.yLabel) {
        yAxis.append(svg("text", {class: "chart-label", transform: `translate(12 ${(top + H - bottom) / 2}) rotate(-90)`,
                                  "text-anchor": "middle"}, opts.yLabel));
      }
      // x axis: the caller's ticks (e.g. hours), else round values
      const xAxis = svg("g", {class: "chart-axis chart-x"});
      xAxis.append(svg("line", {x1: left, x2: W - right, y1: H - bottom, y2: H - bottom}));
      let xTicks = opts.xTicks ? opts.xTicks(x0, x1) : null;
      if (!xTicks) {
        // (steps are whole numbers: no tick between two of them)
        const whole = all.every((p) => Number.isInteger(p.x)) ? 1 : 0;
        const scale = niceTicks(x0, x1, Math.max(2, Math.round((W - left - right) / 90)), whole);
        xTicks = scale.ticks.filter((v) => v >= x0 && v <= x1).map((v) => ({x: v, label: formatTick(v, scale.step)}));
      }
      for (const t of xTicks) {
        xAxis.append(svg("line", {x1: x(t.x), x2: x(t.x), y1: H - bottom, y2: H - bottom + (t.label ? 6 : 3)}));
        if (t.label) {
          xAxis.append(svg("text", {class: ["chart-tick", t.className].filter(Boolean).join(" "), x: x(t.x),
                                    y: H - bottom + 18, "text-anchor": "middle"}, t.label));
        }
      }
      if (opts.xLabel) {
        xAxis.append(svg("text", {class: "chart-label", x: (left + W - right) / 2, y: H - 4, "text-anchor": "middle"}, opts.xLabel));
      }
      chart.append(yAxis, xAxis);
      // the series
      data.forEach((s, i) => {
        const g = svg("g", {class: s.className || `chart-series chart-s${(s.color ?? i) % PALETTE}`, "data-name": s.name,
                            "data-points": String(s.points.length)});
        if (s.kind === "bars") {
          for (const p of s.points) {
            const rect = svg("rect", {x: x(p.x) + 1, y: y(Math.max(0, p.y)), width: Math.max(1, x(p.x + s.width) - x(p.x) - 2),
                                      height: Math.abs(y(0) - y(p.y))});
            if (p.title) rect.append(svg("title", {}, p.title));
            g.append(rect);
          }
        } else if (s.points.length) {
          const drawn = downsample(s.points, x);
          g.append(svg("polyline", {points: drawn.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(" ")}));
          if (s.dots) {
            for (const p of s.points) {
              const dot = svg("circle", {cx: x(p.x), cy: y(p.y), r: 3});
              if (p.title) dot.append(svg("title", {}, p.title));
              g.append(dot);
            }
          }
          if (opts.lastValue) {
            const last = s.points[s.points.length - 1];
            g.append(svg("text", {class: "chart-last", x: x(last.x) + 6, y: y(last.y) + 4}, formatValue(last.y)));
          }
        }
        chart.append(g);
      });
      for (const m of opts.marks || []) {
        const g = svg("g", {class: m.className || "chart-mark"});
        g.append(svg("line", {x1: x(m.x), x2: x(m.x), y1: top - 4, y2: H - bottom}),
                 svg("text", {x: x(m.x), y: top - 8, "text-anchor": "middle", class: "chart-tick"}, m.label));
        chart.append(g);
      }
      if (rows.length) chart.append(legend(rows, left, legendY));
      if (all.length) hover(chart, x, y, W, left, W - right, top, H - bottom);
      container.replaceChildren(chart);
    }

    /** The legend's rows, each no wider than ``width``: [series index, x] of each name in it (a name's
     *  width is estimated: the chart may not be shown yet). */
    function legendRows(width) {
      const rows = [[]];
      let at = 0;
      data.forEach((s, i) => {
        const w = 34 + 7 * s.name.length;
        if (at > 0 && at + w > width) {
          rows.push([]);
          at = 0;
        }
        rows[rows.length - 1].push([i, at]);
        at += w;
      });
      return rows;
    }

    /** One swatch and name per series, in rows (a bar series' swatch is a box, a line's a stroke). */
    function legend(rows, left, baseline) {
      const g = svg("g", {class: "chart-legend", transform: `translate(${left + 8} ${baseline})`});
      rows.forEach((row, r) => row.forEach(([i, at]) => {
        const s = data[i];
        // (a series of the caller's class: its swatch's class is that class with -swatch)
        const cls = s.className ? s.className + "-swatch" : `chart-series chart-s${(s.color ?? i) % PALETTE}`;
        const item = svg("g", {class: cls, transform: `translate(${at} ${18 * r})`});
        item.append(s.kind === "bars" ? svg("rect", {x: 0, y: -9, width: 14, height: 10})
                                      : svg("line", {x1: 0, x2: 16, y1: -4, y2: -4}),
                    svg("text", {x: 20, y: 0}, s.name));
        g.append(item);
      }));
      return g;
    }

    /** Under the pointer: a rule at the nearest x and each line's value there, in words. */
    function hover(chart, x, y, W, xMin, xMax, yMin, yMax) {
      const lines = data.filter((s) => s.kind !== "bars" && s.points.length);
      if (!lines.length) return;
      const rule = svg("line", {class: "chart-rule", y1: yMin, y2: yMax, visibility: "hidden"});
      const readout = svg("text", {class: "chart-readout", y: yMin + 12, visibility: "hidden"});
      const dots = lines.map(() => svg("circle", {class: "chart-hover-dot", r: 3.5, visibility: "hidden"}));
      chart.append(rule, ...dots, readout);
      const hide = () => { for (const n of [rule, readout, ...dots]) n.setAttribute("visibility", "hidden"); };
      // on the chart itself, not a layer over it: a bar's or dot's own title still shows
      chart.addEventListener("pointermove", (e) => {
        const box = chart.getBoundingClientRect(), px = (e.clientX - box.left) * W / box.width;
        if (px < xMin || px > xMax) return hide();
        const words = [];
        let at = null;
        lines.forEach((s, i) => {
          const p = nearest(s.points, px, x);
          dots[i].setAttribute("cx", x(p.x));
          dots[i].setAttribute("cy", y(p.y));
          dots[i].setAttribute("visibility", "visible");
          at = at === null ? p.x : at;
          words.push((lines.length > 1 ? s.name + " " : "") + formatValue(p.y));
        });
        rule.setAttribute("x1", x(at));
        rule.setAttribute("x2", x(at));
        rule.setAttribute("visibility", "visible");
        const right = x(at) > (xMin + xMax) / 2;
        readout.setAttribute("x", x(at) + (right ? -6 : 6));
        readout.setAttribute("text-anchor", right ? "end" : "start");
        readout.textContent = `${opts.xLabel || "x"} ${formatValue(at)}: ${words.join(", ")}`;
        readout.setAttribute("visibility", "visible");
      });
      chart.addEventListener("pointerleave", hide);
    }

    /** The point of sorted `points` whose pixel is nearest `px`. */
    function nearest(points, px, x) {
      let lo = 0, hi = points.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (x(points[mid].x) < px) lo = mid + 1; else hi = mid;
      }
      return lo > 0 && px - x(points[lo - 1].x) < x(points[lo].x) - px ? points[lo - 1] : points[lo];
    }

    /** Redraw at the next frame: a burst of live points is drawn once. */
    function later() {
      if (pending === null) pending = requestAnimationFrame(draw);
    }

    take(series);
    draw();
    return {
      get element() { return container.firstElementChild; },
      update(list) { take(list); later(); },
      append(name, point) {
        let s = data.find((d) => d.name === name);
        if (!s) data.push(s = {name, points: []});
        upsert(s.points, point);
        later();
      },
    };
  }

  window.NJChart = {lineChart, downsample, formatValue};
})();
