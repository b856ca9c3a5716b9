// Notebook Jobs pages: submit, cancel, rerun, and follow a job live (server-sent events).
(function () {
  "use strict";
  const cfg = window.NOTEBOOK_JOBS;
  const TERMINAL = ["succeeded", "failed", "cancelled"];

  function api(path, options) {
    options = options || {};
    options.headers = Object.assign({"X-XSRFToken": cfg.xsrf}, options.headers || {});
    options.credentials = "same-origin";
    return fetch(cfg.api + path, options).then(async (r) => {
      const body = r.status === 204 ? null : await r.json().catch(() => null);
      if (!r.ok) throw new Error((body && body.error && body.error.message) || r.statusText);
      return body;
    });
  }

  function onSubmit(form) {
    const msg = document.getElementById("submit-message");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      msg.textContent = "submitting…";
      const data = new FormData(form);
      for (const key of ["name", "parameters"]) if (!data.get(key)) data.delete(key);
      api("jobs", {method: "POST", body: data})
        .then((job) => { window.location.href = cfg.prefix + "jobs/" + job.id; })
        .catch((err) => { msg.textContent = err.message; msg.className = "ms-2 text-danger"; });
    });
  }

  function onButtons() {
    document.querySelectorAll(".job-cancel").forEach((b) => b.addEventListener("click", () => {
      b.disabled = true;
      api("jobs/" + b.dataset.jobId + "/cancel", {method: "POST"}).then(() => window.location.reload())
        .catch((err) => alert(err.message));
    }));
    const rerun = document.getElementById("job-rerun");
    if (rerun) rerun.addEventListener("click", () => {
      api("jobs/" + rerun.dataset.jobId + "/rerun", {method: "POST"})
        .then((job) => { window.location.href = cfg.prefix + "jobs/" + job.id; })
        .catch((err) => alert(err.message));
    });
  }

  function follow(page) {
    const id = page.dataset.jobId;
    const log = document.getElementById("job-log");
    fetch(cfg.api + "jobs/" + id + "/logs", {credentials: "same-origin", headers: {"X-XSRFToken": cfg.xsrf}})
      .then((r) => r.text()).then((t) => { log.textContent = t; });
    if (TERMINAL.includes(page.dataset.status)) return;
    const events = new EventSource(cfg.api + "jobs/" + id + "/events?_xsrf=" + encodeURIComponent(cfg.xsrf));
    events.addEventListener("cell_finished", (e) => {
      const ev = JSON.parse(e.data);
      showProgress(ev.cells_done, parseInt(document.getElementById("job-progress").dataset.total || "0", 10) || null);
    });
    events.addEventListener("started", (e) => {
      document.getElementById("job-progress").dataset.total = JSON.parse(e.data).cells_total;
    });
    events.addEventListener("log", (e) => { log.textContent += JSON.parse(e.data).text; });
    events.addEventListener("status", (e) => {
      const job = JSON.parse(e.data).job;
      const status = document.getElementById("job-status");
      status.textContent = job.status;
      status.className = "job-status status-" + job.status;
      if (TERMINAL.includes(job.status)) {
        events.close();
        showEnd(job);
      }
    });
  }

  function showProgress(done, total) {
    const bar = document.getElementById("job-progress");
    if (total) bar.dataset.total = total;
    bar.textContent = done + "/" + (total || "?");
    bar.style.width = (total ? 100 * done / total : 0) + "%";
  }

  // The same words as the page's Jinja filters (size, seconds).
  function size(value) {
    if (value === null || value === undefined) return "";
    let v = Number(value);
    for (const unit of ["B", "KiB", "MiB", "GiB", "TiB"]) {
      if (v < 1024 || unit === "TiB") return unit === "B" ? v.toFixed(0) + " B" : v.toFixed(1) + " " + unit;
      v /= 1024;
    }
  }

  function seconds(value) {
    if (value === null || value === undefined) return "";
    const v = Number(value);
    if (v < 60) return v.toFixed(1) + "s";
    const s = Math.floor(v) % 60, m = Math.floor(v / 60) % 60, h = Math.floor(v / 3600);
    return (h ? h + "h " : "") + m + "m " + s + "s";
  }

  function showEnd(job) {
    document.querySelectorAll(".job-cancel").forEach((b) => b.remove());
    if (job.progress) showProgress(job.progress.cells_done, job.progress.cells_total);
    const used = (job.resources || {}).used || {};
    const cells = document.querySelectorAll("#job-used td");
    if (cells.length === 3) {
      cells[0].textContent = used.cpu_seconds === null || used.cpu_seconds === undefined ? "" : used.cpu_seconds.toFixed(1) + " cpu-s";
      cells[1].textContent = size(used.peak_memory);
      cells[2].textContent = seconds(used.wall_seconds);
    }
    if (job.error) {
      const box = document.getElementById("job-error");
      box.textContent = job.error.reason + (job.error.cell !== null ? " in cell " + job.error.cell : "") +
        ": " + job.error.message;
      box.hidden = false;
    }
    if (job.status !== "cancelled") {
      document.querySelectorAll(".job-output-link").forEach((a) => {
        a.href = a.dataset.href;
        a.classList.remove("disabled");
        a.removeAttribute("aria-disabled");
        a.removeAttribute("tabindex");
      });
      const output = document.getElementById("job-output");
      output.src = cfg.api + "jobs/" + job.id + "/output?format=html";
      output.hidden = false;
    }
  }

  function admin() {
    api("admin/queue").then((q) => { document.getElementById("admin-queue").textContent = JSON.stringify(q, null, 2); });
    api("admin/stats").then((s) => { document.getElementById("admin-stats").textContent = JSON.stringify(s, null, 2); });
    demand();
    document.getElementById("demand-retrain").addEventListener("submit", (e) => {
      e.preventDefault();
      const msg = document.getElementById("demand-message");
      msg.textContent = "retraining…";
      api("admin/demand", {method: "POST"})
        .then((info) => { msg.textContent = "now serving " + info.version; demand(); })
        .catch((err) => { msg.textContent = err.message; });
    });
  }

  const pct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%");

  function demand() {
    api("admin/demand").then((info) => {
      const mem = (info.metrics || {}).memory || {};
      document.getElementById("demand-model").textContent = info.version
        ? `Model ${info.version}, trained ${new Date(1000 * info.trained_at).toLocaleString()} on ${info.n_jobs} jobs` +
          (info.metrics.per_job_model ? (mem.mature ? "; calibrated" : "; still calibrating (limits no lower than the history rules)")
                                      : "; too few jobs for a per-job model yet (history rules)")
        : "No model yet: jobs get the admin's defaults and their users' history.";
      const rejected = document.getElementById("demand-rejected");
      rejected.hidden = !info.rejected;
      rejected.textContent = info.rejected
        ? `Version ${info.rejected.version} was rejected (${info.rejected.reason}); ${info.version || "no version"} keeps serving.`
        : "";
      const body = document.querySelector("#demand-realised tbody");
      body.replaceChildren();
      const rows = Object.assign({all: info.realised}, info.realised.by_basis);
      for (const [basis, r] of Object.entries(rows)) {
        const tr = document.createElement("tr");
        const ratio = r.median_limit_over_peak ? r.median_limit_over_peak.toFixed(2) + "×" : "–";
        const odds = r.predicted ? `${pct(r.predicted.oom_kill_rate)} (${pct(r.predicted.realised_oom_kill_rate)}) of ${r.predicted.jobs}` : "–";
        for (const v of [basis, r.jobs, pct(r.memory_slack), pct(r.cpu_slack), pct(r.oom_kill_rate), odds,
                         pct(r.timeout_kill_rate), ratio]) {
          const td = document.createElement("td");
          td.textContent = v;
          tr.appendChild(td);
        }
        body.appendChild(tr);
      }
      const fc = info.forecast_next_24h, box = document.getElementById("demand-forecast");
      const top = Math.max(1e-9, ...fc.jobs);
      box.replaceChildren();
      fc.jobs.forEach((n, i) => {
        const bar = document.createElement("span");
        bar.style.height = (4 + 60 * n / top) + "px";
        bar.title = `${new Date(1000 * fc.hours[i]).toLocaleTimeString([], {hour: "2-digit"})}: ${n.toFixed(1)} jobs, ${fc.cpu_seconds[i].toFixed(0)} cpu-s`;
        box.appendChild(bar);
      });
    }).catch((err) => { document.getElementById("demand-model").textContent = err.message; });
  }

  const form = document.getElementById("submit-form");
  if (form) onSubmit(form);
  onButtons();
  const page = document.getElementById("job-page");
  if (page) follow(page);
  if (document.getElementById("admin-page")) admin();
})();
