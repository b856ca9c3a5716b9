// One job's page: follow it live (server-sent events), its times in local time, cancel,
// and run it again with other parameters.
(function () {
  "use strict";
  const NJ = window.NotebookJobs;
  const page = document.getElementById("job-page");
  if (!page) return;
  const id = page.dataset.jobId;
  const times = {};  // the job's started/finished as last known, for the duration
  let ticker = null;

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

  function showProgress(done, total) {
    const bar = document.getElementById("job-progress");
    if (total) bar.dataset.total = total;
    bar.textContent = done + "/" + (total || "?");
    bar.style.width = (total ? 100 * done / total : 0) + "%";
  }

  function showEnd(job) {
    document.querySelectorAll(".job-cancel").forEach((b) => b.remove());
    if (job.progress) showProgress(job.progress.cells_done, job.progress.cells_total);
    const used = (job.resources || {}).used || {};
    const cells = document.querySelectorAll("#job-used td");
    if (cells.length === 3) {
      cells[0].textContent = used.cpu_seconds === null || used.cpu_seconds === undefined ? "" : used.cpu_seconds.toFixed(1) + " cpu-s";
      cells[1].textContent = NJ.size(used.peak_memory);
      cells[2].textContent = NJ.seconds(used.wall_seconds);
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
      output.src = NJ.cfg.api + "jobs/" + job.id + "/output?format=html";
      output.hidden = false;
    }
  }

  function follow() {
    const log = document.getElementById("job-log");
    fetch(NJ.cfg.api + "jobs/" + id + "/logs", {credentials: "same-origin", headers: {"X-XSRFToken": NJ.cfg.xsrf}})
      .then((r) => r.text()).then((t) => { log.textContent = t; });
    if (NJ.TERMINAL.includes(page.dataset.status)) return;
    const events = new EventSource(NJ.cfg.api + "jobs/" + id + "/events?_xsrf=" + encodeURIComponent(NJ.cfg.xsrf));
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
      page.dataset.status = job.status;
      showTimes(job);
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
    const current = JSON.parse(document.getElementById("job-parameters").textContent);
    const box = document.getElementById("rerun-fields");
    const message = document.getElementById("rerun-message");
    toggle.addEventListener("click", () => {
      form.hidden = !form.hidden;
      toggle.setAttribute("aria-expanded", String(!form.hidden));
      if (!form.hidden && !box.children.length) NJ.paramFields(box, fields, current);
      const first = form.querySelector("input");
      if (!form.hidden && first) first.focus();
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      NJ.clearErrors(form);
      const read = NJ.readParams(box);
      if (Object.keys(read.errors).length) { NJ.showErrors(form, read.errors, message); return; }
      message.className = "ms-2 small";
      message.textContent = "submitting…";
      NJ.api("jobs/" + id + "/rerun", {method: "POST", headers: {"Content-Type": "application/json"},
                                         body: JSON.stringify({parameters: read.parameters})})
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
  rerunForm();
  follow();
})();
