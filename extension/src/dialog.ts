/**
 * The "Submit as job" dialog body: name, the notebook's parameters as typed fields (as the
 * service's dry run reads them), what the service proposes for cpu, memory and time with
 * overrides, and output formats. An error the service says is about one field (its
 * `error.field`) appears beside that field; any other under the form. With "Sweep" on, each
 * parameter's field takes several values and Submit makes a sweep of every combination.
 */
import { Dialog } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { h } from './dom';
import { environmentPicker } from './environments';
import { formFieldOf, JobsError } from './errors';
import { bytesText, IJob } from './jobs';
import { changedParameters, displayValue, IParameterField, namesMap, ownValue, sweepParameters, sweepText, switchedInput } from './params';
import { ISchedule, ISubmission, submitJob } from './request';
import { basisText, Bounds, boundsOf, clampNotes, cronOf, IOverrideInputs, IScheduleInputs, readOverrides, resourcesText, scheduleText } from './sizing';

export const FORMATS = ['html', 'md'];

/** What the dialog holds, to rebuild it after a refused submit. */
export interface IDialogState {
  /** The notebook's parameters, once the service has read them. */
  fields?: IParameterField[];
  name: string;
  inputs: Record<string, string | boolean>;
  overrides: IOverrideInputs;
  formats: string[];
  /** The environment chosen (absent: the Hub's default). */
  environment?: string;
  /** "Repeat on a schedule" (absent: off). */
  schedule?: IScheduleInputs;
  /** "Sweep": several values per parameter (absent: off). */
  sweep?: boolean;
}

export interface ISubmitOptions {
  /** The file to run (a path of the Jupyter server's contents). */
  path: string;
  /** The notebook's parameters; without them the first dry run's answer gives them. */
  fields?: IParameterField[];
  /** Size with the service's dry run as the user types (off for reruns). */
  dryRun: boolean;
  /** The dialog's words, in the user's language. */
  trans: TranslationBundle;
  /** Show name, sizing and formats (off for a rerun, which keeps the job's). */
  full: boolean;
  state?: IDialogState;
  /** An error of the previous attempt, shown at once. */
  error?: JobsError;
  /** Offer "Repeat on a schedule" (a workspace path schedule of this file). */
  schedule?: boolean;
  /** Offer "Sweep" (several values per parameter: a sweep of every combination). */
  sweep?: boolean;
  /**
   * A rerun: ask this for the would-be job (the service's rerun dry run) to offer memory and
   * time-limit fields prefilled from it; without an answer the dialog has parameters only.
   */
  rerunDryRun?: () => Promise<IJob>;
}

export class SubmitBody extends Widget implements Dialog.IBodyWidget<ISubmission> {
  private inputs = new Map<string, HTMLInputElement | HTMLTextAreaElement>();
  private errorNodes = new Map<string, HTMLElement>();
  /** The parameters' inputs and error lines (by name: a parameter may be called `name` or `cpu`). */
  private paramInputs = new Map<string, HTMLInputElement | HTMLTextAreaElement>();
  private paramErrors = new Map<string, HTMLElement>();
  /** The notebook's parameters; null until the service's dry run has read them. */
  private fields: IParameterField[] | null;
  private paramSection: HTMLElement;
  private formError: HTMLElement;
  private sizing: HTMLElement;
  private bounds: Bounds = {};
  private timer: number | null = null;
  private serial = 0;
  /** The refusal of the previous attempt: shown until the user changes something. */
  private pinned: JobsError | null = null;

  private scheduleBox: HTMLInputElement | null = null;
  private sweepBox: HTMLInputElement | null = null;
  private scheduleFields: HTMLElement | null = null;
  private rerunSection: HTMLElement | null = null;
  /** The rerun dry run's prefilled values: only what the user changes from them is sent. */
  private rerunPrefill: { memory: string; timeout: string } | null = null;

  /** The last dry run's answer (the would-be job). */
  proposal: IJob | null = null;

  constructor(private readonly options: ISubmitOptions) {
    super();
    this.addClass('jp-NotebookJobs-dialog');
    const { trans } = options;
    const state = options.state;
    this.formError = h('div', { className: 'jp-NotebookJobs-formError', role: 'alert' });
    this.sizing = h('div', { className: 'jp-NotebookJobs-sizing' }, options.dryRun ? trans.__('Asking the service…') : '');
    const form = h('form', { className: 'jp-NotebookJobs-form', onsubmit: (e: Event) => e.preventDefault() });
    form.append(h('div', { className: 'jp-NotebookJobs-path' }, options.path));
    if (options.full) {
      form.append(this.row('name', trans.__('Job name'), this.textInput('name', state?.name ?? basename(options.path))));
      const env = environmentPicker(trans, state?.environment, () => this.changed());
      this.inputs.set('environment', env.select as any);
      form.append(this.row('environment', trans.__('Environment'), h('div', {}, env.select, env.packages)));
    }
    form.append(h('h3', {}, trans.__('Parameters')));
    if (options.sweep) {
      form.append(this.sweepSwitch(state?.sweep ?? false));
    }
    this.paramSection = h('div', { className: 'jp-NotebookJobs-parameters' });
    // an error about the parameters as a whole (`/parameters`), under their fields
    const paramsError = h('div', { className: 'jp-NotebookJobs-fieldError', 'data-field': 'parameters' });
    this.errorNodes.set('parameters', paramsError);
    form.append(this.paramSection, h('div', { className: 'jp-NotebookJobs-parametersError' }, h('div', {}, paramsError)));
    this.fields = null;
    const fields = state?.fields ?? options.fields;
    if (fields) {
      this.setFields(fields);
    } else {
      this.paramSection.append(h('p', { className: 'jp-NotebookJobs-hint' }, trans.__('Reading the notebook\'s parameters…')));
    }
    if (options.full) {
      form.append(h('h3', {}, trans.__('Resources')));
      form.append(this.sizing);
      const o = state?.overrides ?? { cpu: '', memory: '', timeout: '' };
      const proposed = trans.__('proposed');
      form.append(this.row('cpu', trans.__('CPU (cores)'), this.textInput('cpu', o.cpu, proposed)));
      form.append(this.row('memory', trans.__('Memory (GiB)'), this.textInput('memory', o.memory, proposed), MEMORY_HELP(trans)));
      form.append(this.row('timeout', trans.__('Time limit (min)'), this.textInput('timeout', o.timeout, proposed)));
      form.append(h('h3', {}, trans.__('Outputs')));
      const formats = h(
        'div',
        { className: 'jp-NotebookJobs-formats' },
        h('label', {}, h('input', { type: 'checkbox', checked: true, disabled: true }), ' ', trans.__('notebook (ipynb)'))
      );
      for (const f of FORMATS) {
        const box = h('input', { type: 'checkbox', name: `format-${f}` }) as HTMLInputElement;
        box.checked = state ? state.formats.includes(f) : true;
        this.inputs.set(`format-${f}`, box);
        formats.append(h('label', {}, box, ' ', f === 'html' ? 'HTML' : 'Markdown'));
      }
      form.append(this.row('output_formats', trans.__('Formats'), formats));
    }
    if (options.schedule) {
      form.append(this.scheduleSection(state?.schedule));
    }
    if (options.rerunDryRun) {
      this.rerunSection = h('div', { className: 'jp-NotebookJobs-rerunResources' });
      form.append(this.rerunSection);
    }
    // First in the form: an error about the whole request is seen where the reading starts,
    // not under the fold of a long form while Submit waits for it.
    form.prepend(this.formError);
    this.node.append(form);
    if (options.error) {
      this.pinned = options.error;
      this.showError(options.error);
    }
    if (options.dryRun) {
      this.changed(0, false);
    }
    if (options.rerunDryRun) {
      void this.rerunSizing(options.rerunDryRun, state?.overrides);
    }
  }

  /**
   * Show the notebook's parameters as inputs (once: the file does not change while the dialog
   * is open), with what the user entered before a refused submit.
   */
  private setFields(fields: IParameterField[], saved = this.options.state?.inputs ?? {}): void {
    const { trans } = this.options;
    const sweep = this.sweeping();
    this.fields = fields;
    this.paramInputs.clear();
    this.paramErrors.clear();
    this.paramSection.replaceChildren();
    if (!fields.length) {
      this.paramSection.append(
        h('p', { className: 'jp-NotebookJobs-hint' }, trans.__('This notebook has no cell tagged "parameters", so it runs as it is.'))
      );
    }
    for (const field of fields) {
      const before = ownValue(saved, field.name);
      let input: HTMLInputElement | HTMLTextAreaElement;
      if (field.type === 'bool' && !sweep) {
        input = h('input', { type: 'checkbox', name: `param-${field.name}` }) as HTMLInputElement;
        (input as HTMLInputElement).checked = before !== undefined ? Boolean(before) : Boolean(field.value);
      } else if (field.type === 'json' || field.type === 'expr') {
        input = h('textarea', { name: `param-${field.name}`, rows: 1, spellcheck: 'false' }) as HTMLTextAreaElement;
        input.value = before !== undefined ? String(before) : displayValue(field);
      } else {
        input = h('input', {
          type: 'text',
          inputmode: sweep ? undefined : field.type === 'int' ? 'numeric' : field.type === 'float' ? 'decimal' : undefined,
          name: `param-${field.name}`,
          spellcheck: 'false'
        }) as HTMLInputElement;
        input.value = before !== undefined ? String(before) : sweep ? sweepText(field) : displayValue(field);
      }
      this.paramInputs.set(field.name, input);
      input.addEventListener('input', () => this.changed());
      input.addEventListener('change', () => this.changed());
      const label = `${field.name}${field.type === 'expr' ? '' : ` (${field.type})`}`;
      this.paramSection.append(this.row(field.name, label, input, field.help, this.paramErrors));
    }
  }

  /**
   * "Sweep": each parameter's field takes several values, comma-separated (or a JSON list), and
   * Submit makes a sweep of every combination. Switching keeps what the fields hold (a boolean's
   * switch becomes its text and back).
   */
  private sweepSwitch(on: boolean): HTMLElement {
    const { trans } = this.options;
    const box = h('input', { type: 'checkbox', name: 'sweep-on' }) as HTMLInputElement;
    box.checked = on;
    this.sweepBox = box;
    const help = h(
      'div',
      { className: 'jp-NotebookJobs-help jp-NotebookJobs-sweepHelp' },
      trans.__('Several values per parameter, separated by commas (1, 2, 4 or a JSON list); each combination runs as a job of its own.')
    );
    help.hidden = !on;
    box.addEventListener('change', () => {
      help.hidden = !box.checked;
      if (this.fields) {
        const inputs = this.state().inputs;
        const fields = this.fields;
        const switched = Object.fromEntries(fields.filter(f => f.name in inputs).map(f => [f.name, switchedInput(f, inputs[f.name], box.checked)]));
        this.setFields(fields, switched);
      }
      this.changed();
    });
    return h('div', { className: 'jp-NotebookJobs-sweepSwitch' }, h('label', {}, box, ' ', trans.__('Sweep: try several values')), help);
  }

  /** Whether "Sweep" is on. */
  sweeping(): boolean {
    return this.sweepBox?.checked ?? false;
  }

  /**
   * The dialog's button says what it will do (Submit, Schedule, "Submit sweep of 6 runs"); a
   * sweep and a schedule exclude each other.
   */
  private followMode(): void {
    const { trans } = this.options;
    const scheduled = this.scheduleBox?.checked ?? false;
    if (this.scheduleBox) {
      this.scheduleBox.disabled = this.sweeping();
    }
    if (this.sweepBox) {
      this.sweepBox.disabled = scheduled;
    }
    const label = this.node.closest('.jp-Dialog')?.querySelector('.jp-Dialog-button.jp-mod-accept .jp-Dialog-buttonLabel');
    if (label) {
      const runs = this.sweeping() ? this.read().runs : null;
      label.textContent = scheduled
        ? trans.__('Schedule')
        : runs !== null
          ? trans._n('Submit sweep of %1 run', 'Submit sweep of %1 runs', runs)
          : trans.__('Submit');
    }
  }

  protected onAfterAttach(): void {
    this.followMode(); // (a dialog shown again after a refusal: its button as its fields say)
  }

  /** "Repeat on a schedule": when, in the browser's time zone; the file is read again at each run. */
  private scheduleSection(saved?: IScheduleInputs): HTMLElement {
    const { trans } = this.options;
    const s: IScheduleInputs = saved ?? { on: false, every: 'day', minute: '0', time: '08:00', cron: '0 8 * * *' };
    const box = h('input', { type: 'checkbox', name: 'schedule-on' }) as HTMLInputElement;
    box.checked = s.on;
    this.scheduleBox = box;
    const every = h(
      'select',
      { name: 'schedule-every', 'aria-label': trans.__('Repeat') },
      h('option', { value: 'hour' }, trans.__('every hour')),
      h('option', { value: 'day' }, trans.__('every day')),
      h('option', { value: 'weekday' }, trans.__('every weekday (Mon–Fri)')),
      h('option', { value: 'cron' }, trans.__('a cron expression'))
    ) as HTMLSelectElement;
    every.value = s.every;
    const minute = h('input', { type: 'number', name: 'schedule-minute', min: '0', max: '59', step: '1', 'aria-label': trans.__('At minute') }) as HTMLInputElement;
    minute.value = s.minute;
    const time = h('input', { type: 'time', name: 'schedule-time', 'aria-label': trans.__('At') }) as HTMLInputElement;
    time.value = s.time;
    const cron = h('input', { type: 'text', name: 'schedule-cron', spellcheck: 'false', placeholder: trans.__('minute hour day month weekday'), 'aria-label': trans.__('Cron') }) as HTMLInputElement;
    cron.value = s.cron;
    for (const el of [every, minute, time, cron]) {
      this.inputs.set(el.getAttribute('name')!, el as any);
    }
    const zone = timeZone();
    const when = h('div', { className: 'jp-NotebookJobs-when' });
    const summary = h('div', { className: 'jp-NotebookJobs-help jp-NotebookJobs-scheduleSummary' });
    const update = () => {
      const kind = every.value;
      const show = (el: HTMLElement, on: boolean) => (el.parentElement!.style.display = on ? '' : 'none');
      show(minute, kind === 'hour');
      show(time, kind === 'day' || kind === 'weekday');
      show(cron, kind === 'cron');
      const st = this.scheduleState();
      summary.textContent = st ? scheduleText(st, zone, trans) : '';
      this.scheduleFields!.style.display = box.checked ? '' : 'none';
      this.followMode();
      this.updateAccept();
    };
    when.append(
      every,
      h('label', { className: 'jp-NotebookJobs-at' }, trans.__('at minute'), ' ', minute),
      h('label', { className: 'jp-NotebookJobs-at' }, trans.__('at'), ' ', time),
      h('label', { className: 'jp-NotebookJobs-at' }, cron)
    );
    this.scheduleFields = h(
      'div',
      { className: 'jp-NotebookJobs-scheduleFields' },
      this.row('cron', trans.__('Repeat'), when),
      h('div', { className: 'jp-NotebookJobs-help' }, trans.__("Times are in your browser's time zone, %1.", zone)),
      summary,
      h(
        'p',
        { className: 'jp-NotebookJobs-scheduleNote' },
        trans.__(
          "The schedule runs the saved file %1 as it is at each run (not a snapshot of it now), with the parameters, resources and formats above. Manage it on the service's page.",
          this.options.path
        )
      )
    );
    for (const el of [box, every, minute, time, cron]) {
      for (const type of ['input', 'change']) {
        el.addEventListener(type, () => {
          update();
          this.changed(); // (a cron the fields do not make is an error beside them)
        });
      }
    }
    const section = h(
      'div',
      { className: 'jp-NotebookJobs-schedule' },
      h('h3', {}, trans.__('Schedule')),
      h('label', { className: 'jp-NotebookJobs-scheduleOn' }, box, ' ', trans.__('Repeat on a schedule')),
      this.scheduleFields
    );
    update();
    return section;
  }

  /** What the schedule fields hold (null when "Repeat on a schedule" is off or absent). */
  scheduleState(): IScheduleInputs | null {
    if (!this.scheduleBox) {
      return null;
    }
    const value = (k: string) => this.inputs.get(k)?.value ?? '';
    return {
      on: this.scheduleBox.checked,
      every: value('schedule-every') as IScheduleInputs['every'],
      minute: value('schedule-minute'),
      time: value('schedule-time'),
      cron: value('schedule-cron')
    };
  }

  /** The schedule to create, when "Repeat on a schedule" is on. */
  schedule(): ISchedule | null {
    const st = this.scheduleState();
    if (!st?.on) {
      return null;
    }
    const { submission } = this.read();
    const out: ISchedule = { path: this.options.path, cron: cronOf(st), timezone: timeZone(), parameters: submission.parameters };
    for (const key of ['name', 'resources', 'timeout', 'output_formats', 'environment'] as const) {
      if (submission[key] !== undefined) {
        (out as any)[key] = submission[key];
      }
    }
    return out;
  }

  /** A rerun: the service's would-be job, its memory and time limit as fields with its reason. */
  private async rerunSizing(ask: () => Promise<IJob>, saved?: IOverrideInputs): Promise<void> {
    const section = this.rerunSection!;
    let job: IJob;
    try {
      job = await ask();
    } catch {
      // a service without the rerun dry run: the dialog keeps its parameters only
      section.remove();
      return;
    }
    const allocated = job.resources?.allocated ?? {};
    if (this.isDisposed || (allocated.memory == null && (allocated.timeout ?? (job as any).timeout) == null)) {
      section.remove();
      return;
    }
    this.bounds = boundsOf(job);
    const memory = allocated.memory != null ? gib(Number(allocated.memory)) : '';
    const seconds = allocated.timeout ?? (job as any).timeout;
    const timeout = seconds != null ? `${+(Number(seconds) / 60).toFixed(1)}` : '';
    this.rerunPrefill = { memory, timeout };
    const explanation = (job.resources as any).explanation;
    const { trans } = this.options;
    section.append(
      h('h3', {}, trans.__('Resources')),
      h(
        'div',
        { className: 'jp-NotebookJobs-sizing' },
        h('div', { className: 'jp-NotebookJobs-proposal' }, h('strong', {}, trans.__('The rerun gets:'), ' '), resourcesText({ ...allocated, timeout: seconds }, trans)),
        explanation ? h('div', { className: 'jp-NotebookJobs-explanation' }, String(explanation)) : null
      ),
      this.row('memory', trans.__('Memory (GiB)'), this.textInput('memory', saved?.memory || memory), MEMORY_HELP(trans)),
      this.row('timeout', trans.__('Time limit (min)'), this.textInput('timeout', saved?.timeout || timeout))
    );
  }

  /** What a rerun sends besides its parameters: only the fields the user changed from the prefill. */
  rerunChanges(): { resources?: { memory?: string | number }; timeout?: number; errors: Record<string, string> } {
    if (!this.rerunPrefill) {
      return { errors: {} };
    }
    const value = (k: string) => (this.inputs.get(k)?.value ?? '').trim();
    const changed = {
      cpu: '',
      memory: value('memory') !== this.rerunPrefill.memory ? value('memory') : '',
      timeout: value('timeout') !== this.rerunPrefill.timeout ? value('timeout') : ''
    };
    const over = readOverrides(changed, this.bounds, this.options.trans);
    const out: { resources?: { memory?: string | number }; timeout?: number; errors: Record<string, string> } = { errors: over.errors };
    if (over.resources.memory !== undefined) {
      out.resources = { memory: over.resources.memory };
    }
    if (over.timeout !== undefined) {
      out.timeout = over.timeout;
    }
    return out;
  }

  private textInput(name: string, value: string, placeholder?: string): HTMLInputElement {
    const input = h('input', { type: 'text', name, placeholder, spellcheck: 'false' }) as HTMLInputElement;
    input.value = value;
    this.inputs.set(name, input);
    input.addEventListener('input', () => this.changed());
    return input;
  }

  /** A labelled input with its help and its error line (kept in ``errors`` by ``key``). */
  private row(key: string, label: string, input: HTMLElement, help?: string, errors = this.errorNodes): HTMLElement {
    const error = h('div', { className: 'jp-NotebookJobs-fieldError', 'data-field': key });
    errors.set(key, error);
    return h(
      'div',
      { className: 'jp-NotebookJobs-row', 'data-field': key },
      h('label', { className: 'jp-NotebookJobs-label', title: help || null }, label),
      h('div', { className: 'jp-NotebookJobs-control' }, input, help ? h('div', { className: 'jp-NotebookJobs-help' }, help) : null, error)
    );
  }

  /** What the form holds now. */
  state(): IDialogState {
    const inputs = namesMap<string | boolean>();
    for (const f of this.fields ?? []) {
      const el = this.paramInputs.get(f.name)!;
      inputs[f.name] = el.type === 'checkbox' ? (el as HTMLInputElement).checked : el.value;
    }
    const value = (k: string) => this.inputs.get(k)?.value ?? '';
    return {
      fields: this.fields ?? undefined,
      name: value('name'),
      inputs,
      overrides: { cpu: value('cpu'), memory: value('memory'), timeout: value('timeout') },
      formats: FORMATS.filter(f => (this.inputs.get(`format-${f}`) as HTMLInputElement | undefined)?.checked),
      environment: value('environment') || undefined,
      schedule: this.scheduleState() ?? undefined,
      sweep: this.sweeping() || undefined
    };
  }

  /**
   * The submission, and what the form itself finds wrong (before asking the service), by
   * field: a parameter's error under `param-<name>`, the others under their row's key. With
   * "Sweep" on, the parameters are lists of values, and `runs` says how many combinations.
   */
  read(): { submission: ISubmission; errors: Record<string, string>; runs: number | null } {
    const state = this.state();
    const sweep = this.sweeping() ? sweepParameters(this.fields ?? [], state.inputs) : null;
    const changed = sweep ?? changedParameters(this.fields ?? [], state.inputs);
    const { parameters } = changed;
    const errors = Object.fromEntries(Object.entries(changed.errors).map(([k, v]) => [`param-${k}`, v]));
    const over = readOverrides(state.overrides, this.bounds, this.options.trans);
    const submission: ISubmission = { path: this.options.path, parameters };
    if (this.options.full) {
      submission.name = state.name.trim() || undefined;
      submission.output_formats = ['ipynb', ...state.formats];
      submission.environment = state.environment;
      if (Object.keys(over.resources).length) {
        submission.resources = over.resources;
      }
      if (over.timeout !== undefined) {
        submission.timeout = over.timeout;
      }
    }
    const all = { ...errors, ...over.errors };
    if (sweep && !Object.keys(sweep.parameters).length && !Object.keys(sweep.errors).length) {
      all.parameters = this.options.trans.__('A sweep needs the values to try: give a parameter several, separated by commas.');
    }
    const st = this.scheduleState();
    if (st?.on && !cronOf(st)) {
      all.cron = this.options.trans.__('choose when to repeat (a time, a minute, or a cron expression of five fields)');
    }
    if (this.rerunPrefill) {
      Object.assign(all, this.rerunChanges().errors);
    }
    return { submission, errors: all, runs: sweep?.runs ?? null };
  }

  getValue(): ISubmission {
    return this.read().submission;
  }

  /** Show errors beside their fields (clearing the others). */
  showErrors(errors: Record<string, string>, formMessage = '', notes: Record<string, string> = {}): void {
    if (this.pinned) {
      const pinned = this.errorsOf(this.pinned);
      errors = { ...pinned.fields, ...errors };
      formMessage = formMessage || pinned.form;
    }
    const show = (node: HTMLElement, error: string | undefined, note: string | undefined) => {
      node.textContent = error ?? note ?? '';
      node.classList.toggle('jp-mod-note', !error && Boolean(note));
      node.parentElement?.parentElement?.classList.toggle('jp-mod-error', Boolean(error));
    };
    for (const [key, node] of this.errorNodes) {
      show(node, errors[key], notes[key]);
    }
    for (const [name, node] of this.paramErrors) {
      show(node, errors[`param-${name}`], undefined);
    }
    this.formError.textContent = formMessage;
    this.updateAccept();
  }

  /**
   * Have the dialog's Submit follow the errors shown now. JupyterLab's dialog disables it
   * (and refuses Enter) while a field is marked `.jp-mod-error`, but checks only on an
   * input event, before an answer marks or clears a field: ask it to check again now.
   */
  private updateAccept(): void {
    this.node.dispatchEvent(new Event('input', { bubbles: true }));
  }

  /** A service error: beside the field it names, else for the whole form. */
  showError(error: JobsError): void {
    const { fields, form } = this.errorsOf(error);
    this.showErrors(fields, form);
  }

  /** A service error beside the field its `field` names, else for the whole form. */
  private errorsOf(error: JobsError): { fields: Record<string, string>; form: string } {
    const target = formFieldOf(error.field);
    let key: string | null = null;
    if (target?.parameter !== undefined) {
      key = this.paramErrors.has(target.parameter) ? `param-${target.parameter}` : null;
    } else if (target?.key !== undefined && this.errorNodes.has(target.key)) {
      key = target.key;
    }
    return key ? { fields: { [key]: error.message }, form: '' } : { fields: {}, form: error.message };
  }

  private changed(wait = 400, edited = true): void {
    if (edited) {
      this.pinned = null;
      this.serial++; // an answer to the form before this edit is stale: it must not clear what the edit shows
    }
    this.followMode();
    // what the form itself finds wrong shows at once (and holds Submit back at once)
    const local = this.read().errors;
    if (!this.options.dryRun || Object.keys(local).length) {
      this.showErrors(local);
    } else if (!this.pinned) {
      // the service's verdict follows with the dry run
      this.showErrors({});
    }
    if (!this.options.dryRun) {
      return;
    }
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
    }
    this.timer = window.setTimeout(() => void this.dryRun(), wait);
  }

  /** Ask the service to validate and size what the form holds now. */
  async dryRun(): Promise<void> {
    const { submission, errors } = this.read();
    const serial = ++this.serial; // answers to earlier forms are stale from here on
    if (Object.keys(errors).length) {
      this.showErrors(errors);
      if (!this.proposal) {
        this.sizing.textContent = this.options.trans.__('Fix the fields marked in red to see what the job gets.');
      }
      return;
    }
    try {
      // a sweep is sized as its first run (the service sizes each run as a job)
      const job = await submitJob(this.sweeping() ? firstRun(submission) : submission, true);
      // the admin's bounds hold whatever the form asked: keep them from an older answer too
      // (else a quick first edit, which makes the first answer stale, would lose them)
      const bounds = boundsOf(job);
      if (Object.keys(bounds).length) {
        this.bounds = bounds;
      }
      if (this.fields === null && !this.isDisposed) {
        // the notebook's parameters, as the service reads them (any answer will do: the file is saved)
        this.readFields(job);
      }
      if (serial !== this.serial || this.isDisposed) {
        return; // an older answer
      }
      this.proposal = job;
      this.showProposal(job);
    } catch (e) {
      if (serial !== this.serial || this.isDisposed) {
        return;
      }
      const err = e as JobsError;
      if (err.status === 404 && /dry.?run|not found/i.test(err.message) && !this.proposal) {
        this.sizing.textContent = this.options.trans.__('The service does not offer sizing ahead of a run; it sizes the job when it starts.');
        this.readFields(null);
        return;
      }
      this.showError(err);
      if (err.serviceDown) {
        this.sizing.textContent = err.message;
      }
    }
  }

  /** The parameters a dry run's answer reads in the notebook (none known from a service that does not say). */
  private readFields(job: IJob | null): void {
    const fields = (job as any)?.notebook_parameters;
    if (job && fields !== undefined) {
      this.setFields(Array.isArray(fields) ? fields : []);
      return;
    }
    this.paramSection.replaceChildren(
      h('p', { className: 'jp-NotebookJobs-hint' }, this.options.trans.__("The service does not say which parameters this notebook takes: it runs with the notebook's own values."))
    );
  }

  private showProposal(job: IJob): void {
    const predicted = job.resources.predicted ?? {};
    const allocated = job.resources.allocated ?? {};
    const timeout = allocated.timeout ?? (job as any).timeout;
    const alloc = { ...allocated, timeout };
    this.sizing.replaceChildren(
      ...[
      h('div', { className: 'jp-NotebookJobs-proposal' }, h('strong', {}, this.sweeping() ? this.options.trans.__('The first run gets:') : this.options.trans.__('The job gets:'), ' '), resourcesText(alloc, this.options.trans)),
      h('div', { className: 'jp-NotebookJobs-basis' }, this.options.trans.__('sized by %1', basisText(String(allocated.basis ?? (predicted as any).basis ?? ''), this.options.trans))),
      Object.keys(predicted).length
        ? h('div', { className: 'jp-NotebookJobs-help' }, this.options.trans.__('predicted need: %1', resourcesText(predicted, this.options.trans)))
        : null
      ].filter((n): n is HTMLElement => n !== null)
    );
    for (const key of ['cpu', 'memory', 'timeout'] as const) {
      const input = this.inputs.get(key);
      const v = key === 'timeout' ? timeout : allocated[key];
      if (input && v != null) {
        input.placeholder = key === 'memory' ? gib(Number(v)) : key === 'timeout' ? `${+(Number(v) / 60).toFixed(1)}` : `${v}`;
        const b = this.bounds[key];
        input.title = b
          ? key === 'memory'
            ? this.options.trans.__('between %1 and %2', bytesText(b[0]), bytesText(b[1]))
            : this.options.trans.__('between %1 and %2', b[0], b[1])
          : '';
      }
    }
    // an override the service clamped: say so beside it; one outside the bounds this answer
    // told (the form did not know them when it asked): an error beside it, as before asking
    // (memory as the service read it: the form sends what the user typed, e.g. 512MB)
    const over = readOverrides(this.state().overrides, this.bounds, this.options.trans);
    const requested = job.resources.requested ?? {};
    const asked = { cpu: over.resources.cpu, memory: requested.memory != null ? Number(requested.memory) : undefined, timeout: over.timeout };
    // (the form's own errors stay: an answer never clears what is wrong in the form now)
    this.showErrors({ ...this.read().errors, ...over.errors }, '', clampNotes(asked, alloc, this.options.trans));
  }

  dispose(): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
    }
    super.dispose();
  }
}

/** The memory field's help. */
const MEMORY_HELP = (trans: TranslationBundle) => trans.__('a number of GiB, or a size such as 512MB, 2GB, 1.5GiB (binary units)');

/** Bytes as a number of GiB for a field ("2", "0.5"). */
function gib(bytes: number): string {
  return `${+(bytes / 1024 ** 3).toFixed(2)}`;
}

/** The browser's IANA time zone (what a schedule's times are in). */
export function timeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** A sweep's submission as its first run: each parameter's first value. */
function firstRun(submission: ISubmission): ISubmission {
  const parameters = Object.fromEntries(Object.entries(submission.parameters).map(([k, values]) => [k, (values as unknown[])[0]]));
  return { ...submission, parameters };
}

function basename(path: string): string {
  return path.split('/').pop() ?? path;
}
