// A sweep's page: a sortable row per run (its parameters, status, duration, memory used and final
// metrics), the best run marked for the metric the user picks, an overlay chart of every run's
// series of that metric (chart.js), and cancel and rerun for the whole sweep and each run.
// Live while any run is still to end. Everything a user made (names, parameters) goes in as text.
(function () {
  "use strict";
  const NJ = window.NotebookJobs;
  const page = document.getElementById("sweep-page");
  if (!page) return;
  const id = page.dataset.sweepId;
  const POLL_MS = 3000;
  const table = document.getElementById("sweep-runs");
  const metricSelect = document.getElementById("sweep-metric");
  const modeSelect = document.getElementById("sweep-mode");
  const message = document.getElementById("sweep-message");
  const query = new URLSearchParams(window.location.search);
  let sweep = null;  // as the API last answered (JSON keeps the grid's order, which the page's template would not)
  const sort = {key: "order", dir: 1};
  const series = new Map();  // "job id/metric" -> points, kept once the run has ended
  let timer = null, seq = 0, chart = null;

  const label = (run) => NJ.shortParameters(run.parameters, 60) || run.job_id.slice(0, 8);
  const number = (v) => (typeof v === "number" ? NJChart.formatValue(v) : "");
  // a run's own value only: a name such as "constructor" or "__proto__" is no value every object has
  const own = (values, name) => (Object.hasOwn(values, name) ? values[name] : undefined);

  /** The table's columns: how to read each run's value, and how to show it. */
  function columns() {
    const names = [...new Set(sweep.runs.flatMap((run) => Object.keys(run.parameters)))];
    return [
      {key: "order", title: "#", value: (run) => run.order},
      {key: "status", title: "Status", value: (run) => run.status},
      ...names.map((name) => ({key: "param:" + name, title: name, value: (run) => own(run.parameters, name),
                               text: (v) => (v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v))})),
      {key: "duration", title: "Duration", value: (run) => run.duration, text: NJ.seconds},
      {key: "memory", title: "Memory used", value: (run) => run.used.peak_memory, text: NJ.size},
      ...sweep.metrics.map((m) => ({key: "metric:" + m, title: m, value: (run) => own(run.metrics, m), text: number})),
    ];
  }

  /** Compare two values of a column: numbers as numbers, the rest as text, a missing one last. */
  function compare(a, b) {
    const none = (v) => v === undefined || v === null;
    if (none(a) || none(b)) return none(a) - none(b);
    if (typeof a === "number" && typeof b === "number") return (a - b) * sort.dir;
    return String(a).localeCompare(String(b), undefined, {numeric: true}) * sort.dir;
  }

  function header(cols) {
    const tr = table.tHead.rows[0];
    tr.replaceChildren(document.createElement("th"));  // the best run's mark
    for (const col of cols) {
      const th = document.createElement("th");
      th.dataset.key = col.key;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sweep-sort";
      button.textContent = col.title;
      th.append(button);
      if (sort.key === col.key) th.setAttribute("aria-sort", sort.dir > 0 ? "ascending" : "descending");
      tr.append(th);
    }
    tr.append(document.createElement("th"));  // each run's actions
  }

  function row(run, cols, best) {
    const tr = document.createElement("tr");
    tr.dataset.jobId = run.job_id;
    tr.dataset.status = run.status;
    const mark = document.createElement("td");
    if (run.job_id === best) {
      tr.classList.add("sweep-best-run");
      mark.textContent = "★";
      mark.title = "the best run";
      mark.setAttribute("aria-label", "best run");
    }
    tr.append(mark);
    for (const col of cols) {
      const td = document.createElement("td");
      td.dataset.key = col.key;
      const value = col.value(run);
      if (col.key === "order") {
        const link = document.createElement("a");
        link.href = NJ.cfg.prefix + "jobs/" + run.job_id;
        link.textContent = String(value + 1);
        link.title = "job " + run.job_id;
        td.append(link);
      } else if (col.key === "status") {
        const badge = document.createElement("span");
        badge.className = "job-status status-" + value;
        badge.textContent = value;
        td.append(badge);
        if (run.error) td.title = run.error.message;
      } else {
        td.textContent = col.text ? col.text(value) : value;
      }
      tr.append(td);
    }
    const actions = document.createElement("td");
    actions.className = "text-end text-nowrap";
    const open = document.createElement("a");
    open.className = "btn btn-sm btn-outline-secondary run-open me-1";
    open.href = NJ.cfg.prefix + "jobs/" + run.job_id;
    open.textContent = "Open";
    open.title = "the page of job " + run.job_id;
    const button = document.createElement("button");
    button.dataset.jobId = run.job_id;
    const ended = NJ.TERMINAL.includes(run.status);
    button.className = "btn btn-sm " + (ended ? "btn-outline-primary run-rerun" : "btn-outline-danger run-cancel");
    button.textContent = ended ? "Rerun" : "Cancel";
    actions.append(open, button);
    tr.append(actions);
    return tr;
  }

  function showTable() {
    const cols = columns(), col = cols.find((c) => c.key === sort.key) || cols[0];
    const runs = sweep.runs.slice().sort((a, b) => compare(col.value(a), col.value(b)));
    header(cols);
    const best = (sweep.best || {}).job_id;
    table.tBodies[0].replaceChildren(...runs.map((run) => row(run, cols, best)));
  }

  function showSweep() {
    const status = document.getElementById("sweep-status");
    status.className = "job-status status-" + sweep.status;
    status.textContent = sweep.status;
    document.getElementById("sweep-counts").textContent = Object.entries(sweep.counts)
      .filter(([, n]) => n).map(([s, n]) => `${n} ${s}`).join(", ");
    NJ.setTime(document.getElementById("sweep-created"), sweep.created);
    // (in the grid's own order, which says the order of the runs: the last name varies fastest)
    document.getElementById("sweep-grid").textContent = NJ.shownJSON(sweep.grid.parameters || sweep.grid.runs);
    const chosen = metricSelect.value;
    metricSelect.replaceChildren(new Option("(no metric)", ""), ...sweep.metrics.map((m) => new Option(m, m)));
    metricSelect.value = sweep.metrics.includes(chosen) ? chosen : "";
    const best = sweep.best, bestRun = best && sweep.runs.find((r) => r.job_id === best.job_id);
    document.getElementById("sweep-best").textContent = !best ? "" : !bestRun ? "no succeeded run reported it yet"
      : `best: ${label(bestRun)} (${best.metric} ${NJChart.formatValue(best.value)})`;
    const active = sweep.counts.queued + sweep.counts.running;
    document.getElementById("sweep-cancel").disabled = !active;
    document.getElementById("sweep-rerun-failed").disabled = !sweep.counts.failed;
    document.getElementById("sweep-rerun-all").disabled = sweep.runs.every((r) => !NJ.TERMINAL.includes(r.status));
    showTable();
  }

  /** The chosen metric's series of each run (an ended run's read once), drawn over each other. */
  function showChart() {
    const metric = metricSelect.value, section = document.getElementById("sweep-chart-section");
    if (!metric) { section.hidden = true; return Promise.resolve(); }
    return Promise.all(sweep.runs.map((run) => {
      const key = run.job_id + "/" + metric;
      if (series.has(key)) return series.get(key);
      const q = new URLSearchParams({name: metric});
      return NJ.api(`jobs/${run.job_id}/metrics?${q}`).then((m) => {
        const points = (m.series[0] || {points: []}).points.map((p) => ({x: p.step, y: p.value}));
        if (NJ.TERMINAL.includes(run.status)) series.set(key, points);
        return points;
      }).catch(() => []);
    })).then((all) => {
      if (metric !== metricSelect.value) return;  // another metric was chosen meanwhile
      const lines = sweep.runs.map((run, i) => ({name: label(run), points: all[i], color: run.order}))
        .filter((s) => s.points.length);
      section.hidden = !lines.length;
      const box = document.getElementById("sweep-chart");
      if (!chart || box.dataset.metric !== metric) {  // (the same chart while the metric stays: its readout too)
        box.dataset.metric = metric;
        chart = NJChart.lineChart(box, lines, {title: `${metric} of each run`, xLabel: "step", yLabel: metric});
      } else {
        chart.update(lines);
      }
      box.dataset.lines = String(lines.length);  // tests wait on it
    });
  }

  function load() {
    clearTimeout(timer);
    const mySeq = ++seq;
    const q = new URLSearchParams();
    if (metricSelect.value) { q.set("metric", metricSelect.value); q.set("mode", modeSelect.value); }
    return NJ.api(`sweeps/${id}?${q}`).then((answer) => {
      if (mySeq !== seq) return;
      take(answer);
      showSweep();
      return showChart();
    }).then(() => {
      if (mySeq !== seq) return;
      table.dataset.loaded = String(mySeq);  // tests wait on it
      if (!NJ.TERMINAL.includes(sweep.status)) timer = setTimeout(poll, POLL_MS);
    }).catch((err) => { message.textContent = err.message; message.className = "small text-danger"; });
  }

  /** A sweep from the API, each run numbered in the order it was made (the grid's). */
  function take(answer) {
    answer.runs.forEach((run, i) => { run.order = i; });
    sweep = answer;
  }

  function poll() {
    if (document.visibilityState === "hidden") timer = setTimeout(poll, POLL_MS);
    else load();
  }

  /** An action on the sweep or one run; then ``done`` (by default, the page is read again). */
  function act(button, path, body, {method = "POST", done = load} = {}) {
    button.disabled = true;
    message.textContent = "";
    const options = {method};
    if (body) Object.assign(options, {body: JSON.stringify(body), headers: {"Content-Type": "application/json"}});
    return NJ.api(path, options).then(done).catch((err) => {
      button.disabled = false;
      message.textContent = err.message;
      message.className = "small text-danger";
    });
  }

  table.tHead.addEventListener("click", (e) => {
    const th = e.target.closest("th[data-key]");
    if (!th) return;
    sort.dir = sort.key === th.dataset.key ? -sort.dir : 1;
    sort.key = th.dataset.key;
    showTable();
  });
  table.tBodies[0].addEventListener("click", (e) => {
    const b = e.target.closest("button[data-job-id]");
    if (!b) return;
    if (b.classList.contains("run-cancel")) act(b, `jobs/${b.dataset.jobId}/cancel`);
    else act(b, `jobs/${b.dataset.jobId}/rerun`, {});
  });
  document.getElementById("sweep-cancel").addEventListener("click", (e) => act(e.target, `sweeps/${id}/cancel`));
  document.getElementById("sweep-rerun-failed").addEventListener("click",
    (e) => act(e.target, `sweeps/${id}/rerun`, {failed_only: true}));
  document.getElementById("sweep-rerun-all").addEventListener("click", (e) => {
    if (window.confirm("Run every ended run of this sweep again?")) {
      act(e.target, `sweeps/${id}/rerun`, {failed_only: false});
    }
  });
  document.getElementById("sweep-delete").addEventListener("click", (e) => {
    const runs = sweep ? sweep.runs.length : 0;
    if (!window.confirm(`Delete this sweep with its ${runs} runs and their outputs? Runs still going are cancelled ` +
                        "first. This cannot be undone.")) return;
    // (a 409, a run still stopping after its cancel, stays on the page in words: try again)
    act(e.target, `sweeps/${id}`, null, {method: "DELETE", done: () => window.location.assign(NJ.cfg.prefix)});
  });
  const chosen = () => {
    const q = new URLSearchParams(window.location.search);
    for (const [key, el] of [["metric", metricSelect], ["mode", modeSelect]]) { if (el.value) q.set(key, el.value); }
    if (!metricSelect.value) { q.delete("metric"); q.delete("mode"); }
    history.replaceState(null, "", window.location.pathname + (q.toString() ? "?" + q : ""));
    load();
  };
  metricSelect.addEventListener("change", chosen);
  modeSelect.addEventListener("change", chosen);
  document.getElementById("sweep-controls").addEventListener("submit", (e) => e.preventDefault());

  // the metric and mode the address names (a link to the page as it was), until the sweep says its metrics
  if (query.get("metric")) metricSelect.append(new Option(query.get("metric"), query.get("metric"), true, true));
  if (query.get("mode") === "max") modeSelect.value = "max";
  load();
})();
