// The home page: the submit form (a notebook from the user's files or an upload, one field
// per parameter, what the service would allocate) and the job list (filters, pages, live).
(function () {
  "use strict";
  const NJ = window.NotebookJobs;
  const GIB = 1024 ** 3;
  const PAGE_SIZE = 20;
  //: how often the list looks again while a job shown is still to end, and otherwise (new jobs
  //: from the CLI, Lab or a schedule); never while the tab is hidden
  const POLL_ACTIVE_MS = 3000, POLL_IDLE_MS = 15000;

  // -- the submit form ----------------------------------------------------------------------

  const form = document.getElementById("submit-form");
  const paramBox = document.getElementById("parameters-box");
  const paramFields = document.getElementById("parameter-fields");
  const sizing = document.getElementById("sizing");
  const message = document.getElementById("submit-message");
  const pathSelect = document.getElementById("path");
  const fileInput = document.getElementById("file");
  let dryRunSeq = 0;
  let wantFields = false;  // a new notebook was chosen: build its fields from the next answer

  const sweepMode = document.getElementById("sweep-mode");
  const source = () => form.querySelector("input[name=source]:checked").value;
  const chosen = () => (source() === "workspace" ? pathSelect.value : fileInput.files.length > 0);

  // The executed copies Lab's Open makes (job-outputs/) are results, not notebooks to run: left out unless asked.
  const showOutputs = document.getElementById("show-outputs");
  const OUTPUTS_DIR = "job-outputs/";

  function loadNotebooks() {
    NJ.api("notebooks").then((answer) => {  // newest first
      const shown = answer.notebooks.filter((nb) => showOutputs.checked || !nb.path.startsWith(OUTPUTS_DIR));
      const chosenBefore = pathSelect.value;
      pathSelect.replaceChildren(new Option(shown.length ? "choose a notebook…" : "no notebooks in your files", ""));
      for (const nb of shown) pathSelect.append(new Option(nb.path, nb.path));
      if (shown.some((nb) => nb.path === chosenBefore)) pathSelect.value = chosenBefore;
    }).catch((err) => { pathSelect.replaceChildren(new Option(err.message, "")); });
  }
  showOutputs.addEventListener("change", loadNotebooks);

  //: the parameter types a sweep takes several values of (a JSON value may hold commas of its own)
  const SWEEPABLE = ["int", "float", "str", "none"];

  /** The sweep the fields ask for: {parameters: {name: [values]}, errors, runs}. A field with commas gives
   * its values, each read as the field reads one; any other its one value, where it differs from the notebook's. */
  function sweepGrid() {
    const read = NJ.readParams(paramFields), parameters = NJ.namesMap(), errors = {};
    let runs = 1;
    for (const input of paramFields.querySelectorAll("input[data-param]")) {
      const name = input.dataset.param, key = "param:" + name;
      if (!SWEEPABLE.includes(input.dataset.type) || !input.value.includes(",")) {
        if (read.errors[key]) errors[key] = read.errors[key];
        else if (name in read.parameters) parameters[name] = [read.parameters[name]];
        continue;
      }
      const values = input.value.split(",").map((part) => NJ.readValue(input.dataset.type, part.trim(), part.trim()));
      const bad = values.find((v) => v.error);
      if (bad) errors[key] = "each value " + bad.error;
      else parameters[name] = values.map((v) => v.value);
      runs *= values.length;
    }
    if (runs < 2 && !Object.keys(errors).length) errors.parameters = "a sweep needs a parameter with several values, comma-separated";
    return {parameters, errors, runs};
  }

  /** In sweep mode a number's field takes text: several values, comma-separated. */
  function showSweepMode() {
    for (const input of paramFields.querySelectorAll("input[data-type=int], input[data-type=float]")) {
      input.type = sweepMode.checked ? "text" : "number";
    }
    document.getElementById("submit-button").textContent = sweepMode.checked ? "Run sweep" : "Run as job";
  }

  /** The form as a submission (JSON for a file of the workspace, multipart for an upload), or {errors} when a
   * field cannot be read; in sweep mode, a sweep's (``runs``: how many), or for a dry run its first run's. */
  function submission(dryRun) {
    const errors = {};
    const sweep = sweepMode.checked ? sweepGrid() : null;
    const read = sweep || NJ.readParams(paramFields);
    Object.assign(errors, read.errors);
    const fields = {};
    const name = document.getElementById("name").value.trim();
    if (name) fields.name = name;
    let parameters = read.parameters;
    if (sweep && dryRun) parameters = Object.fromEntries(Object.entries(parameters).map(([k, values]) => [k, values[0]]));
    if (Object.keys(parameters).length) fields.parameters = parameters;
    const resources = {};
    for (const [key, scale] of [["cpu", 1], ["memory", GIB], ["timeout", 60]]) {
      const text = document.getElementById(key).value.trim();
      if (!text) continue;
      const v = Number(text);
      if (!Number.isFinite(v) || v <= 0) { errors[key] = "must be a positive number"; continue; }
      if (key === "timeout") fields.timeout = Math.round(v * scale);
      else resources[key] = key === "memory" ? Math.round(v * scale) : v;
    }
    if (Object.keys(resources).length) fields.resources = resources;
    fields.output_formats = [...form.querySelectorAll(".output-format:checked")].map((c) => c.value);
    fields.notify = document.getElementById("notify").value;
    fields.environment = document.getElementById("environment").value;
    const requirements = document.getElementById("requirements").value;
    if (requirements.trim()) fields.requirements = requirements;
    if (Object.keys(errors).length) return {errors};
    const runs = sweep ? sweep.runs : null;
    if (source() === "workspace") {
      return {body: JSON.stringify(Object.assign({path: pathSelect.value}, fields)),
              headers: {"Content-Type": "application/json"}, runs};
    }
    const data = new FormData();
    data.append("file", fileInput.files[0]);
    for (const [key, value] of Object.entries(fields)) {
      data.append(key, key === "output_formats" ? value.join(",") : typeof value === "string" ? value : JSON.stringify(value));
    }
    return {body: data, runs};
  }

  /** What the dry run says the job would get: its cpu, then the service's own words. */
  function allocationWords(resources) {
    const a = resources.allocated || {};
    const cpu = a.cpu === undefined ? "" : `This job would get ${+Number(a.cpu).toFixed(2)} cpu. `;
    return cpu + (resources.explanation || "");
  }

  /** Ask the service for a dry run of the form as it stands; ``fresh``: a new notebook, so
   * its parameter fields are built from the answer. */
  function dryRun(fresh) {
    NJ.clearErrors(form);
    message.textContent = "";
    if (!chosen()) { sizing.textContent = ""; paramBox.hidden = true; return; }
    if (fresh) { paramFields.replaceChildren(); wantFields = true; }
    const sub = submission(true);
    if (sub.errors) { NJ.showErrors(form, sub.errors, message); return; }
    const seq = ++dryRunSeq;
    sizing.textContent = "asking the service what this job would get…";
    NJ.api("jobs?dry_run=1", {method: "POST", body: sub.body, headers: sub.headers}).then((job) => {
      if (seq !== dryRunSeq) return;  // a later change asked again
      if (wantFields) {
        NJ.paramFields(paramFields, job.notebook_parameters || []);
        showSweepMode();
        paramBox.hidden = !(job.notebook_parameters || []).length;
        wantFields = false;
      }
      const a = job.resources.allocated || {};
      // the proposal, for a blank field: what the service decides when left alone
      const proposal = {cpu: a.cpu, memory: a.memory / GIB, timeout: a.timeout / 60};
      for (const [key, v] of Object.entries(proposal)) {
        document.getElementById(key).placeholder = Number.isFinite(v) ? "auto: " + +v.toFixed(2) : "";
      }
      const runs = sweepMode.checked ? sweepGrid().runs : 0;
      sizing.textContent = (runs > 1 ? `A sweep of ${runs} jobs, each sized on its own. The first: ` : "") +
        allocationWords(job.resources);
    }).catch((err) => {
      if (seq !== dryRunSeq) return;
      sizing.textContent = "";
      NJ.showErrors(form, NJ.apiErrors(err), message);
    });
  }

  const dryRunSoon = NJ.debounce(() => dryRun(false), 400);

  function onSubmit(e) {
    e.preventDefault();
    NJ.clearErrors(form);
    if (!chosen()) {
      NJ.showErrors(form, {path: source() === "workspace" ? "choose a notebook" : "choose a file"}, message);
      return;
    }
    const sub = submission();
    if (sub.errors) { NJ.showErrors(form, sub.errors, message); return; }
    dryRunSoon.cancel();
    dryRunSeq += 1;  // an answer still on its way is for the form as it was
    message.className = "ms-2";
    message.textContent = "submitting…";
    document.getElementById("submit-button").disabled = true;
    const what = sub.runs ? "sweeps/" : "jobs/";
    NJ.api(what.slice(0, -1), {method: "POST", body: sub.body, headers: sub.headers})
      .then((made) => { window.location.href = NJ.cfg.prefix + what + made.id; })
      .catch((err) => {
        document.getElementById("submit-button").disabled = false;
        message.textContent = "";
        NJ.showErrors(form, NJ.apiErrors(err), message);
      });
  }

  if (form) {
    for (const radio of form.querySelectorAll("input[name=source]")) {
      radio.addEventListener("change", () => {
        document.getElementById("pick-workspace").hidden = source() !== "workspace";
        document.getElementById("pick-upload").hidden = source() !== "upload";
        dryRun(true);
      });
    }
    pathSelect.addEventListener("change", () => dryRun(true));
    sweepMode.addEventListener("change", showSweepMode);
    fileInput.addEventListener("change", () => dryRun(true));
    // any other field: ask again once the typing stops
    form.addEventListener("input", (e) => {
      if (e.target !== pathSelect && e.target !== fileInput && e.target.name !== "source") dryRunSoon();
    });
    form.addEventListener("change", (e) => {
      if ((e.target.type === "checkbox" || e.target.tagName === "SELECT") && e.target !== pathSelect) dryRunSoon();
    });
    form.addEventListener("submit", onSubmit);
    loadNotebooks();
    const envSelect = document.getElementById("environment");
    const packages = document.getElementById("env-packages");
    let listing = null;  // GET /environments, asked once: the packages of each environment
    const showPackages = () => {
      const env = listing && listing.environments.find((e) => e.name === envSelect.value);
      document.getElementById("env-package-list").textContent = env
        ? env.packages.map((p) => `${p.name}==${p.version}`).join("\n") : "loading…";
    };
    packages.addEventListener("toggle", () => {
      if (!packages.open || listing) return showPackages();
      NJ.api("environments").then((answer) => { listing = answer; showPackages(); }).catch((err) => {
        document.getElementById("env-package-list").textContent = `could not list the packages: ${err.message || err}`;
      });
    });
    envSelect.addEventListener("change", showPackages);
  }

  // -- the job list ---------------------------------------------------------------------------

  const table = document.getElementById("jobs-table");
  const params = new URLSearchParams(window.location.search);
  const list = {
    status: params.get("status") || "",
    q: params.get("q") || "",
    schedule: params.get("schedule") || "",  // one schedule's runs (the Schedules page's "all runs")
    limit: Math.min(200, Math.max(1, parseInt(params.get("limit") || PAGE_SIZE, 10) || PAGE_SIZE)),
    cursors: [null],  // the cursor of each page seen so far (the API's cursors go one way)
    page: 0,
    timer: null,
    seq: 0,
  };

  function cell(tr, content) {
    const td = document.createElement("td");
    if (content instanceof Node) td.append(content); else td.textContent = content === undefined ? "" : content;
    tr.append(td);
    return td;
  }

  function row(job) {
    const tr = document.createElement("tr");
    tr.dataset.jobId = job.id;
    tr.dataset.status = job.status;
    const link = document.createElement("a");
    link.href = NJ.cfg.prefix + "jobs/" + job.id;
    link.textContent = NJ.isolated(job.name);  // the sweep badge follows it on the line
    const name = cell(tr, link);
    if (job.sweep_id) {
      const sweep = document.createElement("a");
      sweep.className = "badge text-bg-light ms-1 job-sweep";
      sweep.href = NJ.cfg.prefix + "sweeps/" + job.sweep_id;
      sweep.textContent = "sweep";
      sweep.title = "a run of sweep " + job.sweep_id;
      name.append(sweep);
    }
    const badge = document.createElement("span");
    badge.className = "job-status status-" + job.status;
    badge.textContent = job.status;
    const status = cell(tr, badge);
    if (job.error) {
      const why = document.createElement("small");
      why.className = "text-muted ms-1";
      why.textContent = NJ.errorSummary(job, (window.jhdata || {}).user);
      why.title = job.error.message;
      status.append(why);
    }
    const progress = cell(tr, NJ.progressWords(job));
    progress.className = "job-progress small";
    if (job.partial) progress.append(" ", Object.assign(document.createElement("span"), {
      className: "badge text-bg-warning job-partial", textContent: "partial", title: NJ.partialWords(job)}));
    const ps = cell(tr, NJ.shortParameters(job.parameters, 40));
    ps.className = "job-parameters small";
    ps.title = JSON.stringify(job.parameters || {});
    const time = document.createElement("time");
    NJ.setTime(time, job.created);
    cell(tr, time).className = "job-created";
    const d = NJ.duration(job);
    cell(tr, d === null ? "" : NJ.seconds(d)).className = "job-duration";
    const actions = cell(tr, "");
    actions.className = "text-end";
    const button = document.createElement("button");
    button.dataset.jobId = job.id;
    if (NJ.TERMINAL.includes(job.status)) {
      button.className = "btn btn-sm btn-outline-danger job-delete";
      button.textContent = "Delete";
      button.title = "delete this job and its outputs";
    } else {
      button.className = "btn btn-sm btn-outline-danger job-cancel";
      button.textContent = "Cancel";
    }
    actions.append(button);
    return tr;
  }

  function loadJobs() {
    clearTimeout(list.timer);
    const seq = ++list.seq;
    const query = new URLSearchParams({limit: String(list.limit)});
    if (list.status) query.set("status", list.status);
    if (list.q) query.set("q", list.q);
    if (list.schedule) query.set("schedule", list.schedule);
    const cursor = list.cursors[list.page];
    if (cursor) query.set("cursor", cursor);
    return NJ.api("jobs?" + query).then((answer) => {
      if (seq !== list.seq) return;
      const body = table.tBodies[0];
      body.replaceChildren(...answer.jobs.map(row));
      if (!answer.jobs.length) {
        if (list.status || list.q || list.schedule || list.page) {
          const tr = document.createElement("tr");
          tr.className = "empty";
          cell(tr, "No jobs match.").colSpan = 7;
          body.append(tr);
        } else body.append(document.getElementById("no-jobs").content.cloneNode(true));
      }
      list.cursors[list.page + 1] = answer.next_cursor;
      document.getElementById("page-older").disabled = !answer.next_cursor;
      document.getElementById("page-newer").disabled = list.page === 0;
      document.getElementById("page-number").textContent = "page " + (list.page + 1);
      table.dataset.loaded = String(seq);  // tests wait on it
      const active = answer.jobs.some((j) => !NJ.TERMINAL.includes(j.status));
      list.timer = setTimeout(poll, active ? POLL_ACTIVE_MS : POLL_IDLE_MS);
    }).catch((err) => {
      if (seq !== list.seq) return;
      const tr = document.createElement("tr");
      cell(tr, err.message).colSpan = 7;
      table.tBodies[0].replaceChildren(tr);
    });
  }

  function poll() {
    if (document.visibilityState === "hidden") list.timer = setTimeout(poll, POLL_ACTIVE_MS);
    else loadJobs();
  }

  function filtersChanged() {
    list.status = document.getElementById("filter-status").value;
    list.q = document.getElementById("filter-q").value.trim();
    list.schedule = document.getElementById("filter-schedule").value;
    list.cursors = [null];
    list.page = 0;
    const query = new URLSearchParams(window.location.search);
    for (const key of ["status", "q", "schedule"]) { if (list[key]) query.set(key, list[key]); else query.delete(key); }
    history.replaceState(null, "", window.location.pathname + (query.toString() ? "?" + query : ""));
    loadJobs();
  }

  if (table) {
    document.getElementById("filter-status").value = list.status;
    document.getElementById("filter-q").value = list.q;
    const bySchedule = document.getElementById("filter-schedule");
    document.getElementById("filter-schedule-this").value = list.schedule;
    bySchedule.value = list.schedule;
    bySchedule.closest("div").hidden = !list.schedule;
    bySchedule.addEventListener("change", () => { bySchedule.closest("div").hidden = !bySchedule.value; filtersChanged(); });
    document.getElementById("filter-status").addEventListener("change", filtersChanged);
    document.getElementById("filter-q").addEventListener("input", NJ.debounce(filtersChanged, 300));
    document.getElementById("job-filters").addEventListener("submit", (e) => { e.preventDefault(); filtersChanged(); });
    document.getElementById("page-older").addEventListener("click", () => { list.page += 1; loadJobs(); });
    document.getElementById("page-newer").addEventListener("click", () => { list.page = Math.max(0, list.page - 1); loadJobs(); });
    table.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-job-id]");
      if (!b) return;
      const id = b.dataset.jobId;
      const name = b.closest("tr").querySelector("a").textContent;
      if (b.classList.contains("job-delete")) {
        if (!window.confirm(`Delete the job "${name}" and its outputs? This cannot be undone.`)) return;
        b.disabled = true;
        NJ.api("jobs/" + id, {method: "DELETE"}).then(loadJobs).catch((err) => { b.disabled = false; alert(err.message); });
      } else if (b.classList.contains("job-cancel")) {
        b.disabled = true;
        NJ.api("jobs/" + id + "/cancel", {method: "POST"}).then(loadJobs).catch((err) => { b.disabled = false; alert(err.message); });
      }
    });
    loadJobs();
  }
})();
