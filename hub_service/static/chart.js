// The service's one chart: an SVG line (and bar) chart of one or several series, drawn in the theme's
// own colours (classes styled in jobs.css from Bootstrap's variables), so it reads in light and dark.
// Everything is made with createElementNS and textContent: series names are user data.
//
//   const chart = NJChart.lineChart(box, [{name: "loss", points: [{x: 0, y: 1.2}, …]}],
//                                   {title: "loss", xLabel: "step", yLabel: "value"});
//   chart.append("loss", {x: 1, y: 0.9});   // live: redrawn once per animation frame
//   chart.update([...]);                     // every series anew (a sweep's overlay)
//
// Lab's chart (extension/src/chart.ts) is its twin: the two keep one contract, tested on both
// (extension/src/__tests__/chartContract.spec.ts): layout, niceTicks, formatValue, formatTick,
// fitLabel, downsample and nearest answer the same. docs/charts.md says why there are two.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const PALETTE = 8;  // .chart-s0 … .chart-s7 in jobs.css
  const CHAR_WIDTH = 8.4;  // the widest a character of the chart's 12px bold text is (it may not be shown to measure)
  const LAST_GAP = 6;  // between a line's end and its last value
  const LABEL_CHAR_WIDTH = 7;  // the widest a character of the axis labels' 12px text is, on average (cut to fit)
  const READOUT_LINES = 8;  // past this many lines, the readout names the first ones and how many more
  const RESIZE_MS = 100;  // the least time between two redraws while the box is being resized
  const observed = new WeakMap();  // a box -> what lets go of its chart's listeners (a box drawn into again)

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** An axis label that fits `room` (characters `charWidth` wide): `text` itself, or its start and "…" (the
   * whole name is the label's tooltip then). */
  function fitLabel(text, room, charWidth) {
    const fits = Math.floor(room / charWidth);
    return text.length <= fits ? text : text.slice(0, Math.max(1, fits - 1)) + "…";
  }

  /** The y axis's name, turned up its left side about `cy` and cut to the room there in a drawing `height`
   * high; a name cut short is whole in its tooltip. */
  function yAxisLabel(name, x, cy, height) {
    const shown = fitLabel(name, 2 * Math.min(cy, height - cy) - 4, LABEL_CHAR_WIDTH);
    const label = svg("text", {class: "chart-label", transform: `translate(${x} ${cy}) rotate(-90)`, "text-anchor": "middle"}, shown);
    if (shown !== name) label.append(svg("title", {}, name));
    return label;
  }

  /** Fit a readout's backdrop to its words, with a margin (once they are drawn, to be measured). */
  function behind(back, text) {
    const box = text.getBBox();
    for (const [k, v] of Object.entries({x: box.x - 3, y: box.y - 2, width: box.width + 6, height: box.height + 4})) {
      back.setAttribute(k, v);
    }
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
   * Where the plot goes in a box, and its domains: x over the points (bars to their end; one step
   * either side of a lone point), y widened to round ticks; the right margin at least as wide as the
   * widest last value (so none is cut at the box's edge). `box`: {width, height, top, right, bottom,
   * left, lastValue, charWidth, yTicks, yMin?, xDomain?}. The plot's `right` and `bottom` are coordinates.
   */
  function layout(series, box) {
    const all = series.flatMap((s) => s.points);
    let [x0, x1] = box.xDomain || (all.length ? [Math.min(...all.map((p) => p.x)), Math.max(...series.flatMap(
      (s) => s.points.map((p) => p.x + (s.kind === "bars" ? s.width || 0 : 0))))] : [0, 1]);
    if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
    const values = all.map((p) => p.y).concat(box.yMin === undefined ? [] : [box.yMin]);
    let [y0, y1] = values.length ? [Math.min(...values), Math.max(...values)] : [0, 1];
    if (y0 === y1) { const pad = Math.abs(y0) / 10 || 1; y0 -= pad; y1 += pad; }
    const lasts = box.lastValue ? series.filter((s) => s.kind !== "bars" && s.points.length)
      .map((s) => formatValue(s.points[s.points.length - 1].y)) : [];
    const widest = Math.max(0, ...lasts.map((t) => t.length));
    const right = Math.max(box.right, widest ? LAST_GAP + Math.ceil(widest * box.charWidth) + 2 : 0);
    return {left: box.left, right: box.width - right, top: box.top, bottom: box.height - box.bottom, x0, x1,
            ys: niceTicks(y0, y1, box.yTicks)};
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

  /** The point of sorted `points` whose pixel (`toPixel`) is nearest `px` (the left one of two as near). */
  function nearest(points, px, toPixel) {
    let lo = 0, hi = points.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (toPixel(points[mid].x) < px) lo = mid + 1; else hi = mid;
    }
    return lo > 0 && px - toPixel(points[lo - 1].x) <= toPixel(points[lo].x) - px ? points[lo - 1] : points[lo];
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
    let drawnWidth = 0, drawnAt = 0, resized = 0;  // the width it was drawn at, and when: a new one redraws it
    let current = null, readoutX = null;  // this drawing's readout, and the step it shows (kept across redraws)

    function take(list) {
      data = list.map((s) => Object.assign({}, s, {points: s.points.slice().sort((a, b) => a.x - b.x)}));
    }

    function draw() {
      pending = null;
      // as wide as its box (text at its own size, not scaled down with the drawing), unless told
      drawnAt = performance.now();
      const W = (drawnWidth = opts.width || container.clientWidth) || 760, H = opts.height;
      const left = 62;
      // above the plot: the title, then the legend in as many rows as its names need (a sweep's many runs)
      const rows = data.length > 1 ? legendRows(W - left - 16) : [];
      const legendY = opts.title ? 32 : 14;
      const plot = layout(data, {width: W, height: H, top: 16 + (opts.title ? 18 : 0) + 18 * rows.length, right: 16,
                                 bottom: 40, left, lastValue: opts.lastValue, charWidth: CHAR_WIDTH, yTicks: 4,
                                 yMin: opts.yMin, xDomain: opts.xDomain});
      const {x0, x1, ys: yScale, top, right, bottom} = plot;
      const all = data.flatMap((s) => s.points);
      const x = (v) => left + (v - x0) / (x1 - x0) * (right - left);
      const y = (v) => bottom - (v - yScale.lo) / (yScale.hi - yScale.lo) * (bottom - top);

      const chart = svg("svg", {viewBox: `0 0 ${W} ${H}`, role: "img", class: ["nj-chart", opts.className].filter(Boolean).join(" "),
                                "aria-label": opts.description || opts.title || ""});
      if (opts.description || opts.title) chart.append(svg("title", {}, opts.description || opts.title));
      if (opts.title) chart.append(svg("text", {class: "chart-title", x: left, y: 14}, opts.title));
      // y axis: gridlines, ticks and their values
      const yAxis = svg("g", {class: "chart-axis chart-y"});
      for (const v of yScale.ticks) {
        yAxis.append(svg("line", {class: "chart-grid", x1: left, x2: right, y1: y(v), y2: y(v)}),
                     svg("text", {class: "chart-tick", x: left - 6, y: y(v) + 4, "text-anchor": "end"}, formatTick(v, yScale.step)));
      }
      yAxis.append(svg("line", {x1: left, x2: left, y1: top, y2: bottom}));
      if (opts.yLabel) yAxis.append(yAxisLabel(opts.yLabel, 12, (top + bottom) / 2, H));
      // x axis: the caller's ticks (e.g. hours), else round values
      const xAxis = svg("g", {class: "chart-axis chart-x"});
      xAxis.append(svg("line", {x1: left, x2: right, y1: bottom, y2: bottom}));
      let xTicks = opts.xTicks ? opts.xTicks(x0, x1) : null;
      if (!xTicks) {
        // (steps are whole numbers: no tick between two of them)
        const whole = all.every((p) => Number.isInteger(p.x)) ? 1 : 0;
        const scale = niceTicks(x0, x1, Math.max(2, Math.round((right - left) / 90)), whole);
        xTicks = scale.ticks.filter((v) => v >= x0 && v <= x1).map((v) => ({x: v, label: formatTick(v, scale.step)}));
      }
      for (const t of xTicks) {
        xAxis.append(svg("line", {x1: x(t.x), x2: x(t.x), y1: bottom, y2: bottom + (t.label ? 6 : 3)}));
        if (t.label) {
          xAxis.append(svg("text", {class: ["chart-tick", t.className].filter(Boolean).join(" "), x: x(t.x),
                                    y: bottom + 18, "text-anchor": "middle"}, t.label));
        }
      }
      if (opts.xLabel) {
        xAxis.append(svg("text", {class: "chart-label", x: (left + right) / 2, y: H - 4, "text-anchor": "middle"}, opts.xLabel));
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
        g.append(svg("line", {x1: x(m.x), x2: x(m.x), y1: top - 4, y2: bottom}),
                 svg("text", {x: x(m.x), y: top - 8, "text-anchor": "middle", class: "chart-tick"}, m.label));
        chart.append(g);
      }
      if (rows.length) chart.append(legend(rows, left, legendY));
      current = readout(chart, x, y, W, plot);
      container.replaceChildren(chart);
      if (readoutX !== null && current) current.show(readoutX);
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

    /**
     * The values at a step, drawn over the plot: a rule there, a dot on each line at its nearest point,
     * and the step with each line's value in words (also the box's accessible description). Returns
     * {show(at), steps, toStep(clientX)}; null when there is no line.
     */
    function readout(chart, x, y, W, plot) {
      const lines = data.filter((s) => s.kind !== "bars" && s.points.length);
      if (!lines.length) return null;
      const steps = [...new Set(lines.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b)
        .map((v) => ({x: v, y: 0}));
      const rule = svg("line", {class: "chart-rule", y1: plot.top, y2: plot.bottom});
      const text = svg("text", {class: "chart-readout", y: plot.top + 12});
      const back = svg("rect", {class: "chart-readout-back", rx: 3});  // (the theme's own background behind the words)
      const dots = lines.map(() => svg("circle", {class: "chart-hover-dot", r: 3.5}));
      // drawn over the chart, but the pointer goes through: a bar's or dot's own title still shows
      const layer = svg("g", {class: "chart-hover", visibility: "hidden", "pointer-events": "none"});
      layer.append(rule, ...dots, back, text);
      chart.append(layer);
      const show = (at) => {
        readoutX = at;
        if (at === null) {
          layer.setAttribute("visibility", "hidden");
          container.removeAttribute("aria-description");
          return;
        }
        const px = x(at);
        const words = lines.map((s, i) => {
          const p = nearest(s.points, px, x);
          dots[i].setAttribute("cx", x(p.x));
          dots[i].setAttribute("cy", y(p.y));
          return (lines.length > 1 ? s.name + ": " : "") + formatValue(p.y);
        });
        rule.setAttribute("x1", px);
        rule.setAttribute("x2", px);
        // on the side with room: the step (with a lone line's value)
        const right = px > (plot.left + plot.right) / 2, tx = px + (right ? -6 : 6);
        const head = `${opts.xLabel || "x"} ${formatValue(at)}`;
        // a row a line, keyed by its colour (unless it has a class of the caller's); past READOUT_LINES, how many more
        const shown = lines.length > 1 ? lines.slice(0, READOUT_LINES) : [];
        const rows = shown.map((s, i) => {
          const row = svg("tspan", {x: tx, dy: 15});
          if (!s.className) row.append(svg("tspan", {class: `chart-key chart-s${(s.color ?? data.indexOf(s)) % PALETTE}`}, "● "));
          row.append(words[i]);
          return row;
        });
        if (lines.length > shown.length && shown.length) rows.push(svg("tspan", {x: tx, dy: 15}, `(+${lines.length - shown.length})`));
        text.setAttribute("x", tx);
        text.setAttribute("text-anchor", right ? "end" : "start");
        text.replaceChildren(svg("tspan", {x: tx}, lines.length > 1 ? head : `${head}: ${words[0]}`), ...rows);
        layer.setAttribute("visibility", "visible");
        behind(back, text);
        container.setAttribute("aria-description", `${head}: ${words.join(", ")}`);
      };
      const toStep = (clientX) => {
        const box = chart.getBoundingClientRect(), px = (clientX - box.left) * W / box.width;
        return px < plot.left || px > plot.right ? null : nearest(steps, px, x).x;
      };
      return {show, steps, toStep};
    }

    /** The arrow keys move the readout from step to step (Home, End: the first, the last); Escape hides it. */
    function onKey(e) {
      const steps = current && current.steps;
      if (!steps) return;
      const i = readoutX === null ? -1 : steps.findIndex((p) => p.x === readoutX);
      const to = {ArrowRight: Math.min(steps.length - 1, i + 1), ArrowLeft: i < 0 ? steps.length - 1 : Math.max(0, i - 1),
                  Home: 0, End: steps.length - 1};
      if (e.key === "Escape") current.show(null);
      else if (e.key in to) { e.preventDefault(); current.show(steps[to[e.key]].x); }
    }

    /** Drawn again at its box's new width, at most every RESIZE_MS while a window is being resized. */
    function onResize() {
      const width = container.clientWidth;
      if (opts.width || !width || width === drawnWidth || resized) return;  // fixed, hidden, the same, or due
      resized = setTimeout(() => { resized = 0; later(); }, Math.max(0, drawnAt + RESIZE_MS - performance.now()));
    }

    /** Redraw at the next frame: a burst of live points is drawn once. */
    function later() {
      if (pending === null) pending = requestAnimationFrame(draw);
    }

    // the box, not its drawing, takes the pointer and the focus: a redraw keeps both; a chart drawn into
    // the same box before (a page's refresh) lets go of it
    if (observed.has(container)) observed.get(container).abort();
    const gone = new AbortController(), signal = gone.signal;
    observed.set(container, gone);
    container.tabIndex = 0;
    container.classList.add("nj-chart-box");
    container.addEventListener("pointermove", (e) => current && current.show(current.toStep(e.clientX)), {signal});
    for (const type of ["pointerleave", "blur"]) container.addEventListener(type, () => current && current.show(null), {signal});
    container.addEventListener("keydown", onKey, {signal});
    const observer = new ResizeObserver(onResize);
    observer.observe(container);
    signal.addEventListener("abort", () => { observer.disconnect(); clearTimeout(resized); cancelAnimationFrame(pending); });

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

  window.NJChart = {lineChart, layout, niceTicks, formatValue, formatTick, fitLabel, downsample, nearest};
})();
