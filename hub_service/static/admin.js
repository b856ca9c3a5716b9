// The admin page: queue and capacity, every user's jobs and schedules, usage per user, the demand model.
// Everything is drawn from the admin API (…/api/admin/*, /jobs?all=1, /schedules?all=1) and kept live by polling.
(function () {
  "use strict";
  const cfg = window.NOTEBOOK_JOBS;
  const TERMINAL = ["succeeded", "failed", "cancelled"];
  const REFRESH_MS = 5000;
  const PAGE_SIZE = 20;
  const GIB = 1024 ** 3;

  // -- helpers ------------------------------------------------------------------------------

  // jobs.js: the API with the XSRF header and the API's error message; seconds and durations in words
  const {api, seconds, duration, isolated} = window.NotebookJobs;

  // el("td", {class: "x", title: "y"}, "text", otherNode, …)
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  const isMissing = (v) => v === null || v === undefined;
  const gib = (bytes) => (isMissing(bytes) ? "–" : (bytes / GIB).toFixed(2));
  const percent = (part, whole) => (whole ? Math.round(100 * part / whole) : 0);

  // A time in the browser's own zone, with the UTC original on hover and in datetime=.
  function when(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return el("time", {datetime: iso, title: d.toISOString()},
      d.toLocaleString([], {year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
                            second: "2-digit"}));
  }

  function badge(status) {
    return el("span", {class: "job-status status-" + status}, status);
  }

  // 0.00052 -> "0.00052", 0.0123 -> "0.012", 12.345 -> "12.35", 1234.5 -> "1235": two significant
  // digits at least, so a small job's cpu-hours do not read as nothing
  function figure(v) {
    if (isMissing(v)) return "–";
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : String(+v.toPrecision(2));
  }

  // cores: 0.36, 1, 1.5
  const cores = (v) => (isMissing(v) ? "–" : String(+Number(v).toFixed(2)));

  function stamp() {
    document.getElementById("admin-updated").textContent = "updated " + new Date().toLocaleTimeString();
  }

  // -- queue, capacity, statistics --------------------------------------------------------------

  function bar(id, part, whole) {
    const p = percent(part, whole);
    const box = document.getElementById(id);
    box.setAttribute("aria-valuenow", p);
    box.setAttribute("aria-valuemin", 0);
    box.setAttribute("aria-valuemax", 100);
    const inner = box.firstElementChild;
    inner.style.width = Math.min(100, p) + "%";
    inner.className = "progress-bar" + (p >= 90 ? " bg-danger" : p >= 70 ? " bg-warning" : "");
  }

  function showQueue(q) {
    const cap = q.capacity, used = q.used;
    document.getElementById("figure-running").textContent = q.counts.running;
    document.getElementById("figure-running-of").textContent =
      `at most ${cap.max_running} at once, ${cap.per_user} per user`;
    document.getElementById("figure-queued").textContent = q.counts.queued;
    const oldest = q.queued[0];
    document.getElementById("figure-wait").textContent = oldest
      ? "oldest waiting " + seconds((Date.now() - new Date(oldest.created)) / 1000) : "nothing waiting";
    document.getElementById("figure-cpu").textContent =
      `${cores(used.cpu)} of ${cores(cap.cpu)} cores (${percent(used.cpu, cap.cpu)}%)`;
    bar("bar-cpu", used.cpu, cap.cpu);
    document.getElementById("figure-memory").textContent =
      `${gib(used.memory)} of ${gib(cap.memory)} GiB (${percent(used.memory, cap.memory)}%)`;
    bar("bar-memory", used.memory, cap.memory);
    const list = document.getElementById("figure-per-user");
    const users = Object.entries(q.running_per_user).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    list.replaceChildren(...(users.length
      ? users.map(([u, n]) => el("li", {}, el("span", {class: "fw-semibold"}, u), " " + n + " running"))
      : [el("li", {class: "text-body-secondary"}, "nobody")]));
    rememberUsers(Object.keys(q.running_per_user));
    showNodes(q.nodes || []);
    showGpus(q.gpus || []);
  }

  // The host's GPUs (none without an NVIDIA driver: the table stays hidden), and which job holds each.
  function showGpus(gpus) {
    document.getElementById("admin-gpus").hidden = !gpus.length;
    document.querySelector("#admin-gpus-table tbody").replaceChildren(...gpus.map((g) => {
      const jobs = (g.jobs || []).flatMap((id, i) =>
        [i ? ", " : null, el("a", {href: cfg.prefix + "jobs/" + id}, id.slice(0, 8))]);
      return el("tr", {dataset: {gpuIndex: String(g.index)}},
        el("th", {scope: "row"}, String(g.index)),
        el("td", {title: g.uuid}, g.name),
        el("td", {class: "text-end"}, gib(g.memory)),
        el("td", {}, ...(jobs.length ? jobs : [el("span", {class: "text-body-secondary"}, "free")])));
    }));
  }

  // The machines jobs run on (a swarm's nodes; none on one machine): hidden when there are none.
  // Hostnames and labels are the nodes' own: text only.
  function showNodes(nodes) {
    document.getElementById("admin-nodes").hidden = !nodes.length;
    document.querySelector("#admin-nodes-table tbody").replaceChildren(...nodes.map((n) => {
      const usable = n.state === "ready" && n.availability === "active";
      const labels = Object.entries(n.labels || {}).flatMap(([k, v], i) =>
        [i ? " " : null, el("code", {class: "admin-node-label"}, v === "" ? k : `${k}=${v}`)]);
      const held = n.jobs || [];
      return el("tr", {dataset: {nodeId: n.id || ""}},
        el("th", {scope: "row"}, n.hostname || n.id || "–"),
        // (unreachable: the service cannot reach its daemon, so a job placed there fails at once)
        el("td", {class: usable && n.reachable !== false ? null : "text-danger-emphasis"},
          `${n.state || "–"} / ${n.availability || "–"}${n.reachable === false ? " · daemon unreachable" : ""}`),
        el("td", {}, n.role || "–"),
        el("td", {class: "text-end"}, cores(n.cpu)),
        el("td", {class: "text-end"}, gib(n.memory)),
        el("td", {class: "admin-node-labels"}, ...(labels.length ? labels : ["–"])),
        el("td", {class: "text-end", title: held.length ? held.join(", ") : null}, String(held.length)));
    }));
  }

  function showStats(s) {
    const box = document.getElementById("admin-stats");
    const counts = el("span", {class: "me-3"}, el("span", {class: "text-body-secondary me-1"}, "All jobs:"));
    for (const status of ["queued", "running", "succeeded", "failed", "cancelled"]) {
      counts.append(badge(status), " " + (s.status_counts[status] || 0) + " ");
    }
    const r = s.recent;
    const reasons = Object.entries(r.error_reasons).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`);
    box.replaceChildren(counts, el("span", {class: "text-body-secondary"}, r.jobs
      ? `Of the last ${r.jobs} finished: wait before start median ${seconds(r.wait_p50) || "–"},` +
        ` longest ${seconds(r.wait_max) || "–"}; ${reasons.length ? "not succeeded: " + reasons.join(", ") : "none failed"}.`
      : "No job has finished yet."));
    rememberUsers(Object.keys(r.users));
  }

  const knownUsers = new Set();

  function rememberUsers(names) {
    const list = document.getElementById("known-users");
    for (const name of names) {
      if (knownUsers.has(name)) continue;
      knownUsers.add(name);
      list.append(el("option", {value: name}));
    }
  }

  // -- every user's jobs ------------------------------------------------------------------------

  const jobs = {filters: {}, cursor: null, older: null, previous: []};
  const cancelling = new Set();  // ids whose cancel is on its way: a refresh must not offer Cancel again

  function jobDuration(job) {
    if (!job.started) return job.status === "queued" ? "waiting " + seconds((Date.now() - new Date(job.created)) / 1000) : "–";
    return seconds(duration(job));
  }

  function jobRow(job) {
    const alloc = job.resources.allocated || {}, used = job.resources.used || {};
    const meanCores = used.cpu_seconds !== undefined && used.wall_seconds ? used.cpu_seconds / used.wall_seconds : null;
    const status = el("td", {class: "admin-status"}, badge(job.status));
    if (job.error && (job.error.reason !== job.status || job.cancelled_by)) status.append(" ", el("small", {class: "text-body-secondary", title: job.error.message}, job.error.summary || job.error.reason));
    const actions = el("td", {class: "text-end"});
    if (!TERMINAL.includes(job.status)) {
      const busy = cancelling.has(job.id);
      const cancel = el("button", {class: "btn btn-sm btn-outline-danger admin-cancel", type: "button", disabled: busy,
                                   "aria-label": `cancel ${isolated(job.user)}'s job ${isolated(job.name)}`}, busy ? "Cancelling…" : "Cancel");
      cancel.addEventListener("click", () => cancelJob(job, cancel));
      actions.append(cancel);
    }
    const owner = el("button", {type: "button", class: "btn btn-link p-0 border-0 align-baseline admin-owner-filter",
                                title: `only ${isolated(job.user)}'s jobs`}, job.user);
    owner.addEventListener("click", () => filterOwner(job.user));
    const name = el("td", {}, el("a", {href: cfg.prefix + "jobs/" + job.id}, isolated(job.name || job.id.slice(0, 8))));
    if (job.schedule_id) name.append(" ", el("small", {class: "text-body-secondary"}, "scheduled"));
    return el("tr", {dataset: {jobId: job.id, status: job.status}},
      el("td", {class: "admin-owner"}, owner),
      name,
      status,
      el("td", {}, when(job.created)),
      el("td", {class: "text-end"}, jobDuration(job)),
      el("td", {class: "text-end"}, `${cores(alloc.cpu)} / ${cores(meanCores)}`),
      el("td", {class: "text-end"}, `${gib(alloc.memory)} / ${gib(used.peak_memory)}`),
      actions);
  }

  function replaceRow(job) {
    const old = document.querySelector(`#admin-jobs tr[data-job-id="${job.id}"]`);
    if (old) old.replaceWith(jobRow(job));
  }

  async function cancelJob(job, button) {
    const msg = document.getElementById("jobs-message");
    button.disabled = true;
    button.textContent = "Cancelling…";
    cancelling.add(job.id);
    try {
      let now = await api("jobs/" + job.id + "/cancel", {method: "POST"});
      replaceRow(now);
      // 202: a running job is stopping; follow it to its end
      for (let i = 0; i < 60 && !TERMINAL.includes(now.status); i++) {
        await new Promise((ok) => setTimeout(ok, 1000));
        now = await api("jobs/" + job.id);
        replaceRow(now);
      }
      msg.className = "small ms-auto";
      msg.textContent = `${isolated(job.user)}'s job ${isolated(job.name)} is ${now.status}`;
    } catch (err) {
      msg.className = "small ms-auto text-danger-emphasis";
      msg.textContent = `could not cancel ${isolated(job.user)}'s job ${isolated(job.name)}: ${err.message}`;
      button.disabled = false;
      button.textContent = "Cancel";
    } finally {
      cancelling.delete(job.id);
    }
  }

  function loadJobs() {
    const params = new URLSearchParams({limit: PAGE_SIZE});
    const f = jobs.filters;
    if (f.user) params.set("user", f.user); else params.set("all", "1");
    if (f.status) params.set("status", f.status);
    if (f.q) params.set("q", f.q);
    if (jobs.cursor) params.set("cursor", jobs.cursor);
    return api("jobs?" + params).then((page) => {
      const body = document.querySelector("#admin-jobs tbody");
      body.replaceChildren(...(page.jobs.length ? page.jobs.map(jobRow)
        : [el("tr", {class: "empty"}, el("td", {colspan: 8, class: "text-body-secondary"}, "No jobs match."))]));
      jobs.older = page.next_cursor;
      document.getElementById("jobs-older").disabled = !page.next_cursor;
      document.getElementById("jobs-newer").disabled = !jobs.previous.length;
      document.getElementById("jobs-page-info").textContent = `page ${jobs.previous.length + 1}`;
      rememberUsers(page.jobs.map((j) => j.user));
    }).catch((err) => {
      const body = document.querySelector("#admin-jobs tbody");
      body.replaceChildren(el("tr", {class: "empty"}, el("td", {colspan: 8, class: "text-danger-emphasis"}, err.message)));
    });
  }

  function filterOwner(user) {
    const form = document.getElementById("admin-job-filters");
    form.user.value = user;
    form.requestSubmit();
  }

  function setUpJobs() {
    const form = document.getElementById("admin-job-filters");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      jobs.filters = {user: form.user.value.trim(), status: form.status.value, q: form.q.value.trim()};
      jobs.cursor = null;
      jobs.previous = [];
      loadJobs();
    });
    form.status.addEventListener("change", () => form.requestSubmit());
    document.getElementById("jobs-older").addEventListener("click", () => {
      jobs.previous.push(jobs.cursor);
      jobs.cursor = jobs.older;
      loadJobs();
    });
    document.getElementById("jobs-newer").addEventListener("click", () => {
      jobs.cursor = jobs.previous.pop() || null;
      loadJobs();
    });
  }

  // -- every user's schedules -------------------------------------------------------------------

  function scheduleRow(s) {
    const last = (s.last_runs || [])[0];
    const toggle = el("button", {class: "btn btn-sm btn-outline-secondary admin-pause", type: "button",
                                 "aria-label": `${s.paused ? "resume" : "pause"} ${isolated(s.user)}'s schedule ${isolated(s.name)}`},
                      s.paused ? "Resume" : "Pause");
    toggle.addEventListener("click", () => {
      toggle.disabled = true;
      api("schedules/" + s.id, {method: "PATCH", headers: {"Content-Type": "application/json"},
                                body: JSON.stringify({paused: !s.paused})})
        .then((now) => {
          document.querySelector(`#admin-schedules tr[data-schedule-id="${s.id}"]`).replaceWith(scheduleRow(now));
        })
        .catch((err) => {
          toggle.disabled = false;
          const msg = document.getElementById("schedules-message");
          msg.className = "small text-danger-emphasis";
          msg.textContent = err.message;
        });
    });
    const failures = el("td", {class: "text-end" + (s.failures_in_a_row ? " text-danger-emphasis fw-semibold" : ""),
                               title: s.last_error || null}, String(s.failures_in_a_row));
    return el("tr", {dataset: {scheduleId: s.id, paused: String(s.paused)}},
      el("td", {class: "admin-owner"}, s.user),
      el("td", {}, s.name),
      el("td", {}, el("code", {}, s.cron), " ", el("small", {class: "text-body-secondary"}, s.timezone)),
      el("td", {}, s.paused ? el("span", {class: "job-status status-queued"}, "paused") : when((s.next_runs || [])[0])),
      el("td", {}, last ? badge(last.status) : el("span", {class: "text-body-secondary"}, "not run yet"),
         last ? " " : null, last ? when(last.finished || last.created) : null),
      failures,
      el("td", {class: "text-end"}, toggle));
  }

  let schedulesServed = true;  // until the API answers 404: a service without schedules

  function loadSchedules() {
    const body = document.querySelector("#admin-schedules tbody");
    if (!schedulesServed) return Promise.resolve();
    return api("schedules?all=1").then((r) => {
      body.replaceChildren(...(r.schedules.length ? r.schedules.map(scheduleRow)
        : [el("tr", {class: "empty"}, el("td", {colspan: 7, class: "text-body-secondary"}, "No schedules yet."))]));
      rememberUsers(r.schedules.map((s) => s.user));
    }).catch((err) => {
      schedulesServed = err.status !== 404;
      const text = schedulesServed ? err.message : "Schedules are not available on this service.";
      body.replaceChildren(el("tr", {class: "empty"}, el("td", {colspan: 7, class: "text-body-secondary"}, text)));
    });
  }

  // -- usage per user -----------------------------------------------------------------------------

  const usage = {rows: [], totals: null, key: "jobs", descending: true};

  function usagePeriod() {
    const form = document.getElementById("admin-usage-period");
    const choice = form.period.value;
    if (choice !== "custom") {
      const until = new Date();
      return {since: new Date(until - choice * 3600e3).toISOString(), until: until.toISOString()};
    }
    // datetime-local holds the browser's local time, which Date() reads as such
    const since = form.querySelector("#usage-since").value, until = form.querySelector("#usage-until").value;
    return {since: since ? new Date(since).toISOString() : "", until: until ? new Date(until).toISOString() : ""};
  }

  function loadUsage() {
    const period = usagePeriod(), info = document.getElementById("usage-period");
    const params = new URLSearchParams();
    for (const k of ["since", "until"]) if (period[k]) params.set(k, period[k]);
    return api("admin/usage?" + params).then((r) => {
      usage.rows = r.users;
      usage.totals = r.totals;
      info.className = "col-auto small text-body-secondary";
      info.textContent = `${new Date(r.since).toLocaleString()} – ${new Date(r.until).toLocaleString()}`;
      drawUsage();
    }).catch((err) => {
      info.className = "col-auto small text-danger-emphasis";
      info.textContent = err.message;
    });
  }

  function usageCells(r, keys, tag) {
    return keys.map((k) => (k === "user" ? el(tag, {scope: tag === "th" ? "row" : null}, r.user)
      : el("td", {class: "text-end", dataset: {key: k, value: r[k]}}, figure(r[k]))));
  }

  function drawUsage() {
    const table = document.getElementById("admin-usage");
    const keys = [...table.querySelectorAll("thead th")].map((th) => th.dataset.key);
    const dir = usage.descending ? -1 : 1;
    const rows = usage.rows.slice().sort((a, b) => {
      const x = a[usage.key], y = b[usage.key];
      return dir * (typeof x === "string" ? x.localeCompare(y) : x - y) || a.user.localeCompare(b.user);
    });
    table.tBodies[0].replaceChildren(...(rows.length ? rows.map((r) => el("tr", {dataset: {user: r.user}}, ...usageCells(r, keys, "th")))
      : [el("tr", {class: "empty"}, el("td", {colspan: keys.length, class: "text-body-secondary"}, "No jobs in this period."))]));
    table.tFoot.replaceChildren(el("tr", {}, ...usageCells(Object.assign({user: "all users"}, usage.totals), keys, "th")));
    for (const th of table.querySelectorAll("thead th")) {
      th.setAttribute("aria-sort", th.dataset.key === usage.key ? (usage.descending ? "descending" : "ascending") : "none");
    }
  }

  function setUpUsage() {
    const form = document.getElementById("admin-usage-period");
    for (const th of document.querySelectorAll("#admin-usage thead th")) {
      const button = el("button", {type: "button", class: "admin-sort"}, ...th.childNodes);
      button.addEventListener("click", () => {
        const key = th.dataset.key;
        usage.descending = usage.key === key ? !usage.descending : key !== "user";
        usage.key = key;
        drawUsage();
      });
      th.replaceChildren(button);
    }
    form.addEventListener("change", (e) => {
      if (e.target.name !== "period") return;
      const custom = form.period.value === "custom";
      for (const id of ["usage-since", "usage-until", "usage-apply"]) document.getElementById(id).disabled = !custom;
      if (custom) {
        const local = (d) => new Date(d - d.getTimezoneOffset() * 60e3).toISOString().slice(0, 16);
        const now = new Date();
        form.querySelector("#usage-until").value ||= local(now);
        form.querySelector("#usage-since").value ||= local(new Date(now - 7 * 86400e3));
      } else {
        loadUsage();
      }
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      loadUsage();
    });
  }

  // -- the demand model ----------------------------------------------------------------------------

  const pct = (v) => (isMissing(v) ? "–" : (100 * v).toFixed(1) + "%");

  // Submissions per hour: bars for the last 24 hours, a line for the forecast of the next 24 (chart.js draws).
  function drawChart(box, past, forecast) {
    const hour = 3600;
    const t0 = past.hours[0], t1 = (forecast.hours.length ? forecast.hours[forecast.hours.length - 1] : past.hours[past.hours.length - 1]) + hour;
    const clock = (t) => new Date(t * 1000).toLocaleString([], {hour: "2-digit", minute: "2-digit"});
    // a tick each hour, the hour named every third, the day at midnight; in the browser's time zone
    // (the hours are UTC hours: in a zone half an hour off they are named 6:30 and so on)
    const hourTicks = () => {
      const ticks = [];
      for (let t = t0; t <= t1; t += hour) {
        const d = new Date(t * 1000);
        if (d.getHours() % 3) { ticks.push({x: t}); continue; }
        ticks.push(d.getHours() === 0
          ? {x: t, label: d.toLocaleDateString([], {month: "short", day: "numeric"}), className: "chart-day"}
          : {x: t, label: d.toLocaleTimeString([], d.getMinutes() ? {hour: "numeric", minute: "2-digit"} : {hour: "numeric"})});
      }
      return ticks;
    };
    NJChart.lineChart(box, [
      {name: "submitted (last 24 h)", kind: "bars", width: hour, className: "chart-actual",
       points: past.hours.map((t, i) => ({x: t, y: past.jobs[i], title: `${clock(t)}: ${past.jobs[i]} submitted`}))},
      {name: "forecast (next 24 h)", dots: true, className: "chart-forecast",  // through the middle of each hour
       points: forecast.hours.map((t, i) => ({x: t + hour / 2, y: forecast.jobs[i],
                                              title: `${clock(t)}: ${forecast.jobs[i].toFixed(2)} expected`}))},
    ], {description: "submissions per hour, the last 24 hours and the forecast for the next 24", className: "admin-forecast",
        xDomain: [t0, t1], xTicks: hourTicks, yMin: 0, yLabel: "jobs / hour", xLabel: "hour (local time)",
        marks: [{x: Date.now() / 1000, label: "now", className: "chart-now"}]});
  }

  function demand() {
    return api("admin/demand").then((info) => {
      const mem = (info.metrics || {}).memory || {};
      document.getElementById("demand-model").textContent = info.version
        ? `Model ${info.version}, trained ${new Date(1000 * info.trained_at).toLocaleString()} on ${info.n_jobs} jobs` +
          (info.metrics.per_job_model ? (mem.mature ? "; calibrated." : "; still calibrating (limits no lower than the history rules).")
                                      : "; too few jobs for a per-job model yet (history rules).")
        : "No model yet: jobs get the admin's defaults and their users' history.";
      const rejected = document.getElementById("demand-rejected");
      rejected.hidden = !info.rejected;
      rejected.textContent = info.rejected
        ? `Version ${info.rejected.version} was rejected (${info.rejected.reason}); ${info.version || "no version"} keeps serving.`
        : "";
      const body = document.querySelector("#demand-realised tbody");
      const rows = Object.assign({all: info.realised}, info.realised.by_basis);
      body.replaceChildren(...Object.entries(rows).map(([basis, r]) => {
        const ratio = r.median_limit_over_peak ? r.median_limit_over_peak.toFixed(2) + "×" : "–";
        const odds = r.predicted ? `${pct(r.predicted.oom_kill_rate)} (${pct(r.predicted.realised_oom_kill_rate)}) of ${r.predicted.jobs}` : "–";
        return el("tr", {}, ...[basis, r.jobs, pct(r.memory_slack), pct(r.cpu_slack), pct(r.oom_kill_rate), odds,
                                pct(r.timeout_kill_rate), ratio].map((v) => el("td", {}, String(v))));
      }));
      showScoreboard(info.scoreboard);
      drawChart(document.getElementById("demand-forecast"), info.load_last_24h, info.forecast_next_24h);
      document.getElementById("demand-forecast-basis").textContent = forecastBasis(info.forecast_next_24h);
    }).catch((err) => { document.getElementById("demand-model").textContent = err.message; });
  }

  // The scoreboard: per group (everyone, then each user) every policy's kills, odds and unused memory,
  // and which policy that group's jobs are sized by.
  function showScoreboard(board) {
    const table = document.getElementById("demand-scoreboard");
    if (!board) return;
    const names = board.policies || [];
    table.querySelector("thead tr").replaceChildren(
      ...["group", "jobs", ...names, "sizes by"].map((h) => el("th", {scope: "col"}, h)));
    table.querySelector("tbody").replaceChildren(...board.groups.map((g) => el("tr", {"data-group": g.group},
      el("td", {}, g.group), el("td", {}, String(g.jobs)),
      ...names.map((p) => {
        const r = g.rows[p];
        const text = r ? `${r.kills}/${r.jobs} killed, odds ${pct(r.odds)}, ${pct(r.slack)} unused` : "–";
        return el("td", {"data-policy": p, class: p === g.chosen ? "fw-bold" : ""}, (p === g.chosen ? "✓ " : "") + text);
      }),
      el("td", {class: "chosen"}, g.chosen))));
    const sized = Object.entries(board.sized_by || {}).map(([p, n]) => `${p} ${n}`).join(", ");
    document.getElementById("demand-sized-by").textContent = sized
      ? `Recent jobs' memory was sized by: ${sized} (kill budget ${pct(board.budget)}).`
      : "No job has been scored yet.";
  }

  // What the forecast stands on, in words: a flat line from one hour of history is no prediction.
  function forecastBasis(fc) {
    const hours = fc.history_hours || 0, jobs = `${fc.history_jobs || 0} job${fc.history_jobs === 1 ? "" : "s"}`;
    if (!hours) return "The forecast stands on no history of this service yet: it is the model's profile, or none.";
    if (hours < 24) {
      return `The forecast stands on ${hours} hour${hours === 1 ? "" : "s"} of history (${jobs}): less than a day, ` +
             "so it is a flat line at their mean rate.";
    }
    const days = `${Math.floor(hours / 24)} day${hours < 48 ? "" : "s"}`;
    return `The forecast stands on ${days} of history (${jobs})` +
           (hours < 7 * 24 ? ": the daily shape of those days; a weekly one needs a week of history." : ".");
  }

  function setUpDemand() {
    document.getElementById("demand-retrain").addEventListener("submit", (e) => {
      e.preventDefault();
      const msg = document.getElementById("demand-message");
      msg.className = "";
      msg.textContent = "retraining…";
      api("admin/demand", {method: "POST"})
        .then((info) => { msg.textContent = "now serving " + info.version; return demand(); })
        .catch((err) => { msg.className = "text-danger-emphasis"; msg.textContent = err.message; });
    });
  }

  // -- live ------------------------------------------------------------------------------------------

  function refresh() {
    return Promise.all([
      api("admin/queue").then(showQueue),
      api("admin/stats").then(showStats),
      loadJobs(),
      loadSchedules(),
    ]).then(stamp).catch((err) => {
      document.getElementById("admin-updated").textContent = "could not update: " + err.message;
    });
  }

  setUpJobs();
  setUpUsage();
  setUpDemand();
  refresh();
  loadUsage();
  demand();
  // the queue, jobs and schedules follow the Hub while the page is shown
  setInterval(() => { if (document.visibilityState === "visible") refresh(); }, REFRESH_MS);
})();
