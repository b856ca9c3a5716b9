// One job's page: follow it live (server-sent events), its times in local time, cancel,
// and run it again with other parameters.
(function () {
  "use strict";
  const NJ = window.NotebookJobs;
  const page = document.getElementById("job-page");
  if (!page) return;
  const id = page.dataset.jobId;
  const viewer = page.dataset.viewer;
  const times = {};  // the job's started/finished as last known, for the duration
  let ticker = null;
  // the progress as last known: the job's own fields, then the runner's events
  const progress = {status: page.dataset.status, progress: {}, error: null, running: null};

  function showTimes(job) {
    for (const key of ["created", "started", "finished"]) {
      times[key] = job[key];
      NJ.setTime(document.getElementById("job-" + key), job[key]);
    }
    showDuration();
    clearInterval(ticker);
    if (job.started && !job.finished) ticker = setInterval(showDuration, 1000);  // it is running: count
  }

  function showDuration() {
    const d = NJ.duration(times);
    document.getElementById("job-duration").textContent = d === null ? "–" : NJ.seconds(d) + (times.finished ? "" : " so far");
  }

  /** The bar and its words ("1 of 2 cells done, cell 2 running"): done is done, the running cell is not. */
  function showProgress() {
    const p = progress.progress, total = p.cells_total, done = p.cells_done || 0;
    document.getElementById("job-progress").textContent = NJ.progressWords(progress, progress.running);
    const bar = document.getElementById("job-progress-bar");
    bar.style.width = (total ? 100 * done / total : 0) + "%";
    bar.parentElement.setAttribute("aria-valuemax", String(total || 0));
    bar.parentElement.setAttribute("aria-valuenow", String(done));
  }

  function takeJob(job) {
    progress.status = job.status;
    progress.progress = Object.assign({}, job.progress || {});
    progress.error = job.error;
    if (job.status !== "running") progress.running = null;
  }

  function showEnd(job) {
    document.querySelectorAll(".job-cancel").forEach((b) => b.remove());
    takeJob(job);
    showProgress();
    const used = (job.resources || {}).used || {};
    const cells = document.querySelectorAll("#job-used td");
    if (cells.length === 3) {
      cells[0].textContent = used.cpu_seconds === null || used.cpu_seconds === undefined ? "" : used.cpu_seconds.toFixed(1) + " cpu-s";
      cells[1].textContent = NJ.size(used.peak_memory);
      cells[2].textContent = NJ.seconds(used.wall_seconds);
    }
    if (job.error) {
      const box = document.getElementById("job-error");
      const summary = document.createElement("strong");
      summary.id = "job-error-summary";
      summary.textContent = NJ.errorSummary(job, viewer);
      const message = document.createElement("span");
      message.id = "job-error-message";
      message.textContent = job.error.message;
      box.replaceChildren(summary, ": ", message);
      box.hidden = false;
    }
    const partial = document.getElementById("job-partial");
    partial.textContent = NJ.partialWords(job);
    partial.hidden = !job.partial;
    if (job.has_output) {
      document.querySelectorAll(".job-output-link").forEach((a) => {
        a.href = a.dataset.href;
        a.classList.remove("disabled");
        a.removeAttribute("aria-disabled");
        a.removeAttribute("tabindex");
      });
      const output = document.getElementById("job-output");
      output.src = NJ.cfg.api + "jobs/" + job.id + "/output?format=html";
      output.hidden = false;
    }
  }

  // -- metrics: a chart each, filled from GET …/metrics, then live from the stream's "metric" events
  const charts = new Map();
  let streamedPoints = 0;  // points the stream brought (the page says how many, for people and tests)

  function chartOf(name) {
    if (!charts.has(name)) {
      const box = document.createElement("figure");
      box.className = "job-metric";
      box.dataset.metric = name;
      document.getElementById("job-metrics").append(box);
      document.getElementById("job-metrics-section").hidden = false;
      // each metric a colour of its own
      charts.set(name, NJChart.lineChart(box, [{name, points: [], color: charts.size}],
                                         {title: name, xLabel: "step", yLabel: name, lastValue: true, height: 220}));
    }
    return charts.get(name);
  }

  /** One report: its values, at its step (the service gives every point a step). */
  function addReport(report) {
    for (const [name, value] of Object.entries(report.values)) chartOf(name).append(name, {x: report.step, y: value});
  }

  /** What was stored so far; a point the stream brought meanwhile is kept (a step seen twice is drawn once). */
  function loadMetrics() {
    NJ.api("jobs/" + id + "/metrics").then((m) => {
      for (const s of m.series) for (const p of s.points) chartOf(s.name).append(s.name, {x: p.step, y: p.value});
    }).catch(() => {});  // no metrics to show is no error of the page's
  }

  function follow() {
    const log = document.getElementById("job-log");
    fetch(NJ.cfg.api + "jobs/" + id + "/logs", {credentials: "same-origin", headers: {"X-XSRFToken": NJ.cfg.xsrf}})
      .then((r) => r.text()).then((t) => { log.textContent = t; });
    if (NJ.TERMINAL.includes(page.dataset.status)) return loadMetrics();
    const events = new EventSource(NJ.cfg.api + "jobs/" + id + "/events?_xsrf=" + encodeURIComponent(NJ.cfg.xsrf));
    events.addEventListener("open", loadMetrics, {once: true});  // after the stream is up: no point falls between
    events.addEventListener("metric", (e) => {
      const report = JSON.parse(e.data);
      streamedPoints += Object.keys(report.values).length;
      page.dataset.streamedPoints = String(streamedPoints);
      addReport(report);
    });
    events.addEventListener("started", (e) => {
      Object.assign(progress.progress, {cells_total: JSON.parse(e.data).cells_total, cells_done: 0});
      progress.running = null;
      showProgress();
    });
    events.addEventListener("cell_started", (e) => {
      const ev = JSON.parse(e.data);
      progress.running = ev.position || (progress.progress.cells_done || 0) + 1;
      showProgress();
    });
    events.addEventListener("cell_finished", (e) => {
      // the runner counts a cell that raised as finished too: done is what ran to its end without error
      const ev = JSON.parse(e.data);
      progress.progress.cells_done = ev.status === "error" ? ev.cells_done - 1 : ev.cells_done;
      progress.running = null;
      showProgress();
    });
    events.addEventListener("log", (e) => { log.textContent += JSON.parse(e.data).text; });
    events.addEventListener("status", (e) => {
      const job = JSON.parse(e.data).job;
      const status = document.getElementById("job-status");
      status.textContent = job.status;
      status.className = "job-status status-" + job.status;
      page.dataset.status = job.status;
      showTimes(job);
      if (!NJ.TERMINAL.includes(job.status)) { takeJob(job); showProgress(); }
      if (NJ.TERMINAL.includes(job.status)) {
        events.close();
        showEnd(job);
      }
    });
  }

  function rerunForm() {
    const form = document.getElementById("rerun-form");
    const toggle = document.getElementById("job-rerun");
    const fields = JSON.parse(document.getElementById("job-parameter-fields").textContent);
    const current = model.parameters;
    const box = document.getElementById("rerun-fields");
    const message = document.getElementById("rerun-message");
    const memory = document.getElementById("rerun-memory"), timeout = document.getElementById("rerun-timeout");
    const sizing = document.getElementById("rerun-sizing");
    const sized = {memory: null, timeout: null};  // what the dry run filled in: unchanged, nothing is requested

    /** The rerun's body: the parameters, and the memory and time limit where the user changed them. */
    function body(parameters) {
      const out = {parameters};
      const mem = memory.value.trim(), secs = timeout.value.trim();
      if (mem && mem !== sized.memory) out.resources = {memory: /^\d+$/.test(mem) ? Number(mem) : mem};
      if (secs && secs !== sized.timeout) out.timeout = Number(secs);
      return out;
    }

    /** Size the rerun as it would run (a dry run: nothing stored) and say why, in words. */
    function dryRun(fill) {
      const read = NJ.readParams(box);
      NJ.api("jobs/" + id + "/rerun?dry_run=1", {method: "POST", headers: {"Content-Type": "application/json"},
                                                    body: JSON.stringify(fill ? {} : body(read.parameters))})
        .then((job) => {
          const a = job.resources.allocated || {};
          if (fill) {
            sized.memory = memory.value = a.memory ? Math.ceil(a.memory / 2 ** 20) + "MiB" : "";
            sized.timeout = timeout.value = a.timeout ? String(Math.round(a.timeout)) : "";
          }
          sizing.textContent = job.resources.explanation || "";
          sizing.className = "small mt-2 mb-2";
        })
        .catch((err) => {
          if (fill) { sizing.textContent = ""; return; }
          NJ.clearErrors(form);
          NJ.showErrors(form, NJ.apiErrors(err), sizing);
        });
    }
    const resize = NJ.debounce(() => { NJ.clearErrors(form); dryRun(false); }, 400);
    memory.addEventListener("input", resize);
    timeout.addEventListener("input", resize);

    toggle.addEventListener("click", () => {
      form.hidden = !form.hidden;
      toggle.setAttribute("aria-expanded", String(!form.hidden));
      if (!form.hidden && !box.children.length) {
        NJ.paramFields(box, fields, current);
        dryRun(true);
      }
      const first = form.querySelector("input");
      if (!form.hidden && first) first.focus();
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      resize.cancel();
      NJ.clearErrors(form);
      const read = NJ.readParams(box);
      if (Object.keys(read.errors).length) { NJ.showErrors(form, read.errors, message); return; }
      message.className = "ms-2 small";
      message.textContent = "submitting…";
      NJ.api("jobs/" + id + "/rerun", {method: "POST", headers: {"Content-Type": "application/json"},
                                         body: JSON.stringify(body(read.parameters))})
        .then((job) => { window.location.href = NJ.cfg.prefix + "jobs/" + job.id; })
        .catch((err) => { message.textContent = ""; NJ.showErrors(form, NJ.apiErrors(err), message); });
    });
  }

  document.querySelectorAll(".job-cancel").forEach((b) => b.addEventListener("click", () => {
    b.disabled = true;
    NJ.api("jobs/" + b.dataset.jobId + "/cancel", {method: "POST"}).then(() => window.location.reload())
      .catch((err) => { b.disabled = false; alert(err.message); });
  }));
  showTimes(Object.fromEntries(["created", "started", "finished"].map((k) => {
    const el = document.getElementById("job-" + k);
    return [k, el.getAttribute("datetime")];
  })));
  const model = JSON.parse(document.getElementById("job-model").textContent);
  document.getElementById("job-parameters").textContent = NJ.shownJSON(model.parameters);  // as text, "<" and all
  takeJob(model);
  showProgress();
  rerunForm();
  follow();
})();
