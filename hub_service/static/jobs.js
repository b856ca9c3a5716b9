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

  const form = document.getElementById("submit-form");
  if (form) onSubmit(form);
  onButtons();
  const page = document.getElementById("job-page");
  if (page) follow(page);
})();
