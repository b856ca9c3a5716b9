// The Schedules page: list the user's schedules live, pause/resume, run now, edit, delete, and
// create one from a job ("run this every…"). Everything goes through the REST API.
(function () {
  "use strict";
  const cfg = window.NOTEBOOK_JOBS;
  const page = document.getElementById("schedules-page");
  if (!page) return;
  const ACTIVE = ["queued", "running"];
  const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
  const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                  "October", "November", "December"];
  const ALIASES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                   "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"};
  const LAST_SHOWN = 5;

  const {api, isolated} = window.NotebookJobs;  // jobs.js: the XSRF header, errors with the API's message

  const json = (method, body) => ({method, body: JSON.stringify(body), headers: {"Content-Type": "application/json"}});
  const pad = (n) => String(n).padStart(2, "0");

  // A cron expression in words where it is simple; the same rules as the CLI (hub_service/cli/schedules.py).
  function cronWords(cron) {
    const fields = (ALIASES[cron.trim()] || cron).trim().split(/\s+/);
    if (fields.length !== 5) return "cron " + cron;
    const [minute, hour, dom, month, dow] = fields;
    const num = (v, max) => /^\d{1,2}$/.test(v) && Number(v) <= max;
    const rest = (i) => fields.slice(i).every((f) => f === "*");
    if (!num(minute, 59)) {
      if (rest(1) && (minute === "*" || /^\*\/\d{1,2}$/.test(minute)))
        return minute === "*" ? "every minute" : "every " + Number(minute.slice(2)) + " minutes";
      return "cron " + cron;
    }
    if (hour === "*" && rest(2)) return "every hour at :" + pad(minute);
    if (!num(hour, 23)) return "cron " + cron;
    const at = "at " + pad(hour) + ":" + pad(minute);
    if (dom === "*" && month === "*") {
      if (dow === "*") return "every day " + at;
      if (dow === "1-5") return "every weekday " + at;
      if (num(dow, 7)) return "every " + DAYS[Number(dow) % 7] + " " + at;
      if (/^\d(,\d)+$/.test(dow) && dow.split(",").every((d) => Number(d) <= 7)) {
        const names = dow.split(",").map((d) => DAYS[Number(d) % 7]);
        return "every " + names.slice(0, -1).join(", ") + " and " + names[names.length - 1] + " " + at;
      }
      return "cron " + cron;
    }
    if (dow === "*" && /^\d{1,2}$/.test(dom) && Number(dom) >= 1 && Number(dom) <= 31) {
      if (month === "*") return "on day " + Number(dom) + " of every month " + at;
      if (/^\d{1,2}$/.test(month) && Number(month) >= 1 && Number(month) <= 12)
        return "every year on " + Number(dom) + " " + MONTHS[Number(month) - 1] + " " + at;
    }
    return "cron " + cron;
  }

  const when = (s) => cronWords(s.cron) + " (" + s.timezone + ")";
  const local = (iso) => new Date(iso).toLocaleString([], {weekday: "short", year: "numeric", month: "short",
                                                           day: "numeric", hour: "2-digit", minute: "2-digit"});

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== false)
      node.append(c instanceof Node ? c : String(c));
    return node;
  }

  // -- the list ---------------------------------------------------------------------------

  const body = document.querySelector("#schedules-table tbody");
  let timer = null;

  function refresh() {
    clearTimeout(timer);
    return api("schedules").then((answer) => {
      if (!body.querySelector(".schedule-edit")) render(answer.schedules);  // an open editor is not wiped
      // while a run is under way its badge changes soon: look again sooner
      const busy = answer.schedules.some((s) => s.last_runs.some((r) => ACTIVE.includes(r.status)));
      timer = setTimeout(refresh, busy ? 3000 : 30000);
    }).catch((err) => {
      body.replaceChildren(el("tr", {class: "empty"}, el("td", {colspan: 6, class: "text-danger"}, err.message)));
      timer = setTimeout(refresh, 30000);
    });
  }

  function render(schedules) {
    if (!schedules.length) {
      body.replaceChildren(el("tr", {class: "empty"}, el("td", {colspan: 6, class: "text-muted"},
        "No schedules yet: open a job and choose “Run this every…”, or use New schedule above.")));
      return;
    }
    body.replaceChildren(...schedules.map(row));
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) target.classList.add("table-active");
    }
  }

  function row(s) {
    const source = s.source.kind === "path" ? "reads " + s.source.path + " at each run"
      : "runs its copy of " + s.source.input_name;
    const next = s.paused ? el("span", {class: "badge text-bg-secondary"}, "paused")
      : s.next_runs.length ? el("time", {datetime: s.next_runs[0], title: "then: " + s.next_runs.slice(1).map(local).join(", ")},
                                local(s.next_runs[0]))
      : "never";
    const runs = s.last_runs.slice(0, LAST_SHOWN).map((r) => el("a", {
      class: "job-status status-" + r.status + " me-1 text-decoration-none", href: cfg.prefix + "jobs/" + r.id,
      title: local(r.created) + (r.summary || r.reason ? ": " + (r.summary || r.reason) : "")}, r.status));
    const fails = el("td", {class: "schedule-failures"},
      el("span", {class: s.failures_in_a_row ? "fw-bold text-danger" : ""}, s.failures_in_a_row),
      s.last_error ? el("div", {class: "small text-danger schedule-error"}, s.last_error) : null);
    const act = (label, cls, onclick) => el("button", {type: "button", class: "btn btn-sm " + cls, onclick}, label);
    return el("tr", {id: "schedule-" + s.id, dataset: {scheduleId: s.id}},
      el("td", {}, el("div", {class: "fw-semibold schedule-name"}, s.name), el("div", {class: "small text-muted"}, source)),
      el("td", {class: "schedule-when"}, el("span", {title: s.cron}, when(s)), " ",
         act("Edit", "btn-link p-0 align-baseline schedule-edit-open", () => edit(s))),
      el("td", {class: "schedule-next"}, next),
      el("td", {class: "schedule-runs"}, runs.length ? runs : el("span", {class: "text-muted"}, "none yet"),
         runs.length ? el("a", {class: "small schedule-history", href: cfg.prefix + "?schedule=" + s.id}, "all runs") : null),
      fails,
      el("td", {class: "text-end text-nowrap"},
        s.paused ? act("Resume", "btn-outline-success schedule-resume", () => patch(s, {paused: false}))
                 : act("Pause", "btn-outline-secondary schedule-pause", () => patch(s, {paused: true})),
        " ", act("Run now", "btn-outline-primary schedule-run", () => runNow(s)),
        " ", act("Delete", "btn-outline-danger schedule-delete", () => remove(s))));
  }

  function rowMessage(s, err) {
    const tr = document.getElementById("schedule-" + s.id);
    let box = tr && tr.querySelector(".schedule-row-error");
    if (tr && !box) tr.cells[1].append(box = el("div", {class: "small text-danger schedule-row-error", role: "alert"}));
    if (box) box.textContent = err.message; else alert(err.message);
  }

  function patch(s, changes) {
    return api("schedules/" + s.id, json("PATCH", changes)).then(refresh).catch((err) => rowMessage(s, err));
  }

  function runNow(s) {
    api("schedules/" + s.id + "/run", {method: "POST"}).then(refresh).catch((err) => rowMessage(s, err));
  }

  function remove(s) {
    if (!confirm(`Delete the schedule “${isolated(s.name)}”? The jobs it made stay.`)) return;
    api("schedules/" + s.id, {method: "DELETE"}).then(refresh).catch((err) => rowMessage(s, err));
  }

  function edit(s) {
    const cell = document.querySelector(`#schedule-${s.id} .schedule-when`);
    const cron = el("input", {class: "form-control form-control-sm font-monospace", value: s.cron,
                              "aria-label": "cron expression", spellcheck: "false"});
    const zone = el("input", {class: "form-control form-control-sm", value: s.timezone, list: "schedule-zones",
                              "aria-label": "time zone", spellcheck: "false"});
    const msg = el("div", {class: "small text-danger", role: "alert"});
    const close = () => { form.remove(); refresh(); };
    const form = el("form", {class: "schedule-edit d-flex flex-wrap gap-1 mt-1", onsubmit: (e) => {
      e.preventDefault();
      api("schedules/" + s.id, json("PATCH", {cron: cron.value.trim(), timezone: zone.value.trim()}))
        .then(close).catch((err) => { msg.textContent = err.message; });
    }}, cron, zone, el("button", {type: "submit", class: "btn btn-sm btn-primary"}, "Save"),
      el("button", {type: "button", class: "btn btn-sm btn-link", onclick: close}, "Cancel"), msg);
    cell.replaceChildren(form);
    cron.focus();
  }

  // -- the "run this every…" form -----------------------------------------------------------

  const form = document.getElementById("schedule-form");
  const $ = (id) => document.getElementById(id);

  function cronFromForm() {
    const preset = $("schedule-preset").value;
    const [h, m] = ($("schedule-time").value || "00:00").split(":").map(Number);
    if (preset === "hourly") return Number($("schedule-minute").value || 0) + " * * * *";
    if (preset === "daily") return m + " " + h + " * * *";
    if (preset === "weekly") return m + " " + h + " * * " + $("schedule-day").value;
    return $("schedule-cron").value.trim();
  }

  function showPreset() {
    const preset = $("schedule-preset").value;
    form.querySelectorAll(".preset-field").forEach((f) => { f.hidden = !f.dataset.presets.split(" ").includes(preset); });
    const cron = cronFromForm();
    $("schedule-preview").textContent = cron ? cronWords(cron) + " (" + ($("schedule-timezone").value || "UTC") + ")" : "…";
  }

  function fillJobs() {
    const select = $("schedule-job");
    if (!select) return;
    api("jobs?limit=50").then((answer) => {
      const seen = new Set();
      select.replaceChildren(el("option", {value: ""}, answer.jobs.length ? "choose one of your jobs…" : "no jobs yet"));
      for (const job of answer.jobs) {
        const key = job.name + JSON.stringify(job.parameters);  // one entry per notebook and parameters
        if (seen.has(key)) continue;
        seen.add(key);
        select.append(el("option", {value: job.id}, isolated(job.name) + (Object.keys(job.parameters).length
          ? " " + window.NotebookJobs.shownJSON(job.parameters) : "") + " · " + new Date(job.created).toLocaleDateString()));
      }
    }).catch((err) => { select.replaceChildren(el("option", {value: ""}, err.message)); });
  }

  function setupForm() {
    const zone = $("schedule-timezone");
    zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    if (Intl.supportedValuesOf) {
      $("schedule-zones").replaceChildren(...Intl.supportedValuesOf("timeZone").map((z) => el("option", {value: z})));
    }
    for (const id of ["schedule-preset", "schedule-minute", "schedule-day", "schedule-time", "schedule-cron",
                      "schedule-timezone"]) {
      $(id).addEventListener("input", showPreset);
      $(id).addEventListener("change", showPreset);
    }
    showPreset();
    $("schedule-new").addEventListener("click", () => {
      form.hidden = false;
      $("schedule-new").hidden = true;
      fillJobs();
    });
    $("schedule-cancel").addEventListener("click", () => {
      if (form.dataset.fromJob) { location.href = cfg.prefix + "schedules"; return; }
      form.hidden = true;
      $("schedule-new").hidden = false;
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const msg = $("schedule-message");
      const fromJob = form.dataset.fromJob || ($("schedule-job") && $("schedule-job").value);
      if (!fromJob) { msg.textContent = "choose a job to repeat"; msg.className = "ms-2 text-danger"; return; }
      const cron = cronFromForm();
      if (!cron) { msg.textContent = "write a cron expression, e.g. 30 2 * * 1-5"; msg.className = "ms-2 text-danger"; return; }
      const request = {from_job: fromJob, cron, timezone: $("schedule-timezone").value.trim() || "UTC",
                       notify: $("schedule-notify").value};
      if ($("schedule-name").value.trim()) request.name = $("schedule-name").value.trim();
      msg.textContent = "creating…";
      msg.className = "ms-2";
      $("schedule-create").disabled = true;
      api("schedules", json("POST", request)).then((s) => {
        // the list, with the new one marked (and no form to send twice on reload)
        location.href = cfg.prefix + "schedules#schedule-" + s.id;
        if (!form.dataset.fromJob) location.reload();
      }).catch((err) => {
        msg.textContent = err.message;
        msg.className = "ms-2 text-danger";
        $("schedule-create").disabled = false;
      });
    });
  }

  setupForm();
  refresh();
})();
