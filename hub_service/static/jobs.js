// Notebook Jobs pages: what every page shares (the API, sizes, local times, parameter
// fields, errors beside their field) as window.NotebookJobs.
// home.js (submit form, job list) and job.js (one job) build on it; admin.js is the admin page's own.
(function () {
  "use strict";
  // the page's data, not a script of its own: the page's Content-Security-Policy runs none inline
  const cfg = window.NOTEBOOK_JOBS = JSON.parse(document.getElementById("notebook-jobs-config").textContent);
  const TERMINAL = ["succeeded", "failed", "cancelled"];

  /** An API refusal: the service's message, status, code and the field it is about (a JSON pointer). */
  class APIError extends Error {
    constructor(message, status, code, field) {
      super(message);
      this.status = status;
      this.code = code;
      this.field = field || null;
    }
  }

  function api(path, options) {
    options = options || {};
    options.headers = Object.assign({"X-XSRFToken": cfg.xsrf}, options.headers || {});
    options.credentials = "same-origin";
    return fetch(cfg.api + path, options).then(async (r) => {
      const body = r.status === 204 ? null : await r.json().catch(() => null);
      const err = body && body.error;
      if (!r.ok) throw new APIError((err && err.message) || r.statusText, r.status, err && err.code, err && err.field);
      return body;
    });
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

  const pad = (n) => String(n).padStart(2, "0");
  const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

  /** An ISO time in the browser's time zone: "2026-12-01 12:13:14" (the API's are UTC). */
  function localTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
           `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  /** A <time> element showing ``iso`` in local time, the zone in its tooltip. */
  function setTime(el, iso) {
    if (!iso) { el.removeAttribute("datetime"); el.textContent = "–"; return; }
    el.dateTime = iso;
    el.textContent = localTime(iso);
    el.title = `${iso} (shown in ${TIME_ZONE})`;
  }

  /** Seconds a job ran (or has run so far), or null before it started. */
  function duration(job, now) {
    if (!job.started) return null;
    const end = job.finished ? new Date(job.finished) : (now || new Date());
    return Math.max(0, (end - new Date(job.started)) / 1000);
  }

  /** Why a job did not succeed, in words: the service's error.summary ("Ran out of memory"),
   * "Cancelled by you" when ``viewer`` is the one who cancelled it; "" for none. */
  function errorSummary(job, viewer) {
    const e = job.error;
    if (!e) return "";
    if (e.reason === "cancelled" && viewer && job.cancelled_by === viewer) return "Cancelled by you";
    return e.summary || e.reason;
  }

  /** A job's progress in words, counted one way (code cells, from 1): "1 of 2 cells done, cell 2
   * running", "3 of 3 cells done", "1 of 3 cells done, stopped at cell 2". ``running``: the
   * 1-based place of the cell running now when an event said so (else the one after the done ones). */
  function progressWords(job, running) {
    const p = job.progress || {}, total = p.cells_total, done = p.cells_done || 0;
    if (p.phase) return p.phase;  // "building environment": its requirements' image, before any cell
    if (total === null || total === undefined) {
      return {queued: "waiting to start", running: "starting"}[job.status] || "";
    }
    let text = `${done} of ${total} cell${total === 1 ? "" : "s"} done`;
    if (job.status === "running" && (running || done < total)) text += `, cell ${running || done + 1} running`;
    else if (job.error && job.error.cell !== null && job.error.cell !== undefined) text += `, stopped at cell ${done + 1}`;
    return text;
  }

  /** What a job's output links say about a stopped run's notebook: "partial (stopped at cell 2 of 3)"; "" if whole. */
  function partialWords(job) {
    if (!job.partial) return "";
    const p = job.progress || {}, done = p.cells_done || 0;
    const of = p.cells_total ? ` of ${p.cells_total}` : "";
    if (job.error && job.error.cell !== null && job.error.cell !== undefined) return `partial (stopped at cell ${done + 1}${of})`;
    return `partial (stopped after ${done}${of} cells)`;
  }

  /** "alpha=0.5, label=first try" (cut at ``limit`` characters), each value ``isolated``. This and the two below
   * are Lab's too (extension/src/bidi.ts: one spec holds both to the same answers). */
  function shortParameters(parameters, limit) {
    let out = "", room = limit;
    for (const [k, v] of Object.entries(parameters || {})) {
      const head = (out ? ", " : "") + k + "=", value = typeof v === "string" ? v : JSON.stringify(v);
      if (head.length + value.length > room) {  // the rest is cut, with "…"
        const keep = room - 1 - head.length;
        return out + (keep < 0 ? head.slice(0, room - 1) : head + isolated(value.slice(0, keep))) + "…";
      }
      out += head + isolated(value);
      room -= head.length + value.length;
    }
    return out;
  }

  // Bidi controls (embeddings, overrides, isolates, marks), and right-to-left letters (Hebrew, Arabic, Syriac,
  // Thaana, N'Ko… and their presentation forms)
  const BIDI_CONTROL = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
  const REORDERS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFF\u{10800}-\u{10FFF}\u{1E800}-\u{1EFFF}]/u;

  /** A user's ``text`` as part of a line, unable to reorder the rest of it: a bidi override in a parameter's
   * value ends with the value, right-to-left words in it still read right to left. Such text goes in an
   * isolate (FSI … PDI) whose end it cannot move (a stray PDI of its own is dropped, an isolate it leaves
   * open is closed); text with neither stays as it is. */
  function isolated(text) {
    text = String(text);
    if (!REORDERS.test(text)) return text;
    let open = 0, out = "";
    for (const c of text) {
      if (c === "\u2066" || c === "\u2067" || c === "\u2068") open++;
      else if (c === "\u2069") { if (!open) continue; open--; }
      out += c;
    }
    return "\u2068" + out + "\u2069".repeat(open + 1);
  }

  // a name the server wrote into a line (a heading beside its status): isolated as the scripts isolate theirs;
  // its <bdi> alone would let a stray PDI of the name's own close the isolate early
  for (const el of document.querySelectorAll("bdi[data-isolated]")) el.textContent = isolated(el.textContent);

  /** ``value`` as JSON to show: its bidi controls written as escapes (``\u202e``), so that it reads as it is. */
  function shownJSON(value) {
    return JSON.stringify(value).replace(BIDI_CONTROL, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
  }

  /** ``fn`` called once calls stop for ``ms``; ``.cancel()`` drops a call still waiting. */
  function debounce(fn, ms) {
    let timer = null;
    const call = (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
    call.cancel = () => clearTimeout(timer);
    return call;
  }

  // -- parameter fields (one per name of the notebook's parameters cell) ------------------

  function isJSON(text) {
    try { JSON.parse(text); return true; } catch (e) { return false; }
  }

  const INPUT_TYPES = {int: "number", float: "number", str: "text", none: "text", json: "text", expr: "text"};

  /** Fields of ``fields`` (the dry run's notebook_parameters) into ``container``, showing
   * ``values[name]`` where given, else the notebook's own value. */
  function paramFields(container, fields, values) {
    values = values || {};
    container.replaceChildren();
    for (const f of fields) {
      const given = Object.prototype.hasOwnProperty.call(values, f.name);
      const value = given ? values[f.name] : f.value;
      const col = document.createElement("div");
      col.className = "col-sm-6 col-lg-4";
      const id = container.id + "-" + f.name;
      const input = document.createElement("input");
      input.id = id;
      input.dataset.param = f.name;
      input.dataset.type = f.type;
      input.dataset.default = JSON.stringify(f.type === "expr" ? f.source : f.value);
      const label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = f.name + " ";
      if (f.type === "bool") {
        col.classList.add("form-check", "form-switch", "ps-5", "pt-4");
        input.type = "checkbox";
        input.className = "form-check-input";
        input.checked = Boolean(value);
        label.className = "form-check-label";
        col.append(input, label);
      } else {
        label.className = "form-label";
        input.type = INPUT_TYPES[f.type];
        input.className = "form-control";
        if (f.type === "int") input.step = "1";
        if (f.type === "float") input.step = "any";
        if (f.type === "expr" && !given) input.value = f.source;
        else if (f.type === "str" || (f.type === "expr" && typeof value === "string")) input.value = value;
        else if (f.type === "int" || f.type === "float") input.value = value === null || value === undefined ? "" : String(value);
        else if (f.type === "json" && !given && isJSON(f.source)) input.value = f.source;  // as the cell writes it
        else input.value = JSON.stringify(value);
        input.placeholder = {json: "JSON, e.g. [1, 2]", none: "None, or a JSON value", expr: f.source}[f.type] || "";
        col.append(label, input);
      }
      const kind = document.createElement("small");
      kind.className = "text-muted";
      kind.textContent = f.help || (f.type === "expr" ? "as written: " + f.source : f.type);
      label.append(kind);
      const err = document.createElement("div");
      err.className = "invalid-feedback d-block";
      err.dataset.errorFor = "param:" + f.name;
      col.append(err);
      input.addEventListener("input", () => { input.classList.remove("is-invalid"); err.textContent = ""; });
      container.append(col);
    }
  }

  /** An empty map of names to values: a parameter named "__proto__" is a key of it like any other
   * (assigned to a plain object, it would set the object's prototype and be lost). */
  const namesMap = () => Object.create(null);

  /** The parameters that differ from the notebook's own, and an error per field that is
   * not of its type: {parameters, errors: {"param:NAME": message}}. */
  function readParams(container) {
    const parameters = namesMap(), errors = {};
    for (const input of container.querySelectorAll("input[data-param]")) {
      const name = input.dataset.param, type = input.dataset.type, text = input.value.trim();
      const original = JSON.parse(input.dataset.default);
      let value;
      if (type === "bool") value = input.checked;
      else if (type === "expr" && input.value === original) continue;  // left as the notebook has it
      else {
        const read = readValue(type, text, input.value);
        if (read.error) { errors["param:" + name] = read.error; continue; }
        value = read.value;
      }
      if (JSON.stringify(value) !== JSON.stringify(original)) parameters[name] = value;
    }
    return {parameters, errors};
  }

  /** One value typed for a parameter of ``type`` (``text`` trimmed, ``raw`` as typed): {value} or {error}. */
  function readValue(type, text, raw) {
    if (type === "int" || type === "float") {
      const value = Number(text);
      if (text === "" || !Number.isFinite(value)) return {error: "must be a number"};
      if (type === "int" && !Number.isInteger(value)) return {error: "must be a whole number"};
      return {value};
    }
    if (type === "str") return {value: raw};
    if (type === "json") {
      try { return {value: JSON.parse(text)}; } catch (e) { return {error: "must be JSON, e.g. [1, 2] or {\"a\": 1}"}; }
    }
    if (type === "none" && text === "") return {value: null};
    try { return {value: JSON.parse(text)}; } catch (e) { return {value: raw}; }  // not JSON: text
  }

  // -- errors beside the field they name ----------------------------------------------------

  /** The form's name for the field an API error's ``error.field`` (a JSON pointer into the request) points
   * at: "/resources/memory" is "memory", "/parameters/alpha" "param:alpha", "/path" "path"; "" for none. */
  function formField(pointer) {
    if (!pointer) return "";
    const [top, sub] = pointer.split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
    if (top === "parameters" && sub !== undefined) return "param:" + sub;
    if (top === "resources" && sub !== undefined) return sub === "ram" ? "memory" : sub;
    return top;
  }

  /** Show ``errors`` ({field: message}) beside their fields in ``form`` (a parameter's without a field of its
   * own beside the parameters); the rest in ``fallback``. */
  function showErrors(form, errors, fallback) {
    for (const [field, message] of Object.entries(errors)) {
      const box = form.querySelector(`[data-error-for~="${CSS.escape(field)}"]`) ||
        (field.startsWith("param:") ? form.querySelector('[data-error-for~="parameters"]') : null);
      const input = field.startsWith("param:") ? form.querySelector(`[data-param="${CSS.escape(field.slice(6))}"]`)
        : form.querySelector(`[data-field~="${CSS.escape(field)}"]`);
      if (input) input.classList.add("is-invalid");
      if (box) {
        box.textContent = message;
        const folded = box.closest("details");
        if (folded) folded.open = true;  // an error inside a folded section must be seen
      }
      else if (fallback) { fallback.textContent = message; fallback.className = "ms-2 text-danger"; }
    }
  }

  function clearErrors(form) {
    form.querySelectorAll("[data-error-for]").forEach((el) => { el.textContent = ""; });
    form.querySelectorAll(".is-invalid").forEach((el) => el.classList.remove("is-invalid"));
  }

  /** An API error as {field: message}: beside the field its error.field names, if the form has it. */
  function apiErrors(err) {
    return {[formField(err.field)]: err.message};
  }

  window.NotebookJobs = {
    cfg, TERMINAL, APIError, api, size, seconds, localTime, setTime, duration, shortParameters, isolated, shownJSON, debounce, namesMap,
    paramFields, readParams, readValue, formField, showErrors, clearErrors, apiErrors, errorSummary, progressWords, partialWords,
  };
})();
