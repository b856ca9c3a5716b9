/**
 * The "Submit as job" dialog body: name, the notebook's parameters as typed fields, what
 * the service proposes for cpu, memory and time (from its dry run) with overrides, and
 * output formats. The service's validation errors appear beside the field they concern.
 */
import { Dialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { fieldsOfError, JobsError } from './errors';
import { IJob } from './jobs';
import { changedParameters, displayValue, IParameterField } from './params';
import { ISubmission, submitJob } from './request';
import { basisText, Bounds, boundsOf, clampNotes, IOverrideInputs, readOverrides, resourcesText } from './sizing';

/** Create an element with attributes and children. */
export function h(tag: string, attrs: Record<string, any> = {}, ...children: (Node | string | null)[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) {
      continue;
    }
    if (k === 'className') {
      el.className = v;
    } else if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children) {
    if (c !== null) {
      el.append(c);
    }
  }
  return el;
}

export const FORMATS = ['html', 'md'];

/** What the dialog holds, to rebuild it after a refused submit. */
export interface IDialogState {
  name: string;
  inputs: Record<string, string | boolean>;
  overrides: IOverrideInputs;
  formats: string[];
}

export interface ISubmitOptions {
  /** The file to run (a path of the Jupyter server's contents). */
  path: string;
  fields: IParameterField[];
  /** Size with the service's dry run as the user types (off for reruns). */
  dryRun: boolean;
  /** Show name, sizing and formats (off for a rerun, which keeps the job's). */
  full: boolean;
  state?: IDialogState;
  /** An error of the previous attempt, shown at once. */
  error?: JobsError;
}

export class SubmitBody extends Widget implements Dialog.IBodyWidget<ISubmission> {
  private inputs = new Map<string, HTMLInputElement | HTMLTextAreaElement>();
  private errorNodes = new Map<string, HTMLElement>();
  private formError: HTMLElement;
  private sizing: HTMLElement;
  private bounds: Bounds = {};
  private timer: number | null = null;
  private serial = 0;

  /** The last dry run's answer (the would-be job). */
  proposal: IJob | null = null;

  constructor(private readonly options: ISubmitOptions) {
    super();
    this.addClass('jp-NotebookJobs-dialog');
    const state = options.state;
    this.formError = h('div', { className: 'jp-NotebookJobs-formError', role: 'alert' });
    this.sizing = h('div', { className: 'jp-NotebookJobs-sizing' }, options.dryRun ? 'Asking the service…' : '');
    const form = h('form', { className: 'jp-NotebookJobs-form', onsubmit: (e: Event) => e.preventDefault() });
    form.append(h('div', { className: 'jp-NotebookJobs-path' }, options.path));
    if (options.full) {
      form.append(this.row('name', 'Job name', this.textInput('name', state?.name ?? basename(options.path))));
    }
    form.append(h('h3', {}, 'Parameters'));
    if (!options.fields.length) {
      form.append(
        h('p', { className: 'jp-NotebookJobs-hint' }, 'This notebook has no cell tagged "parameters", so it runs as it is.')
      );
    }
    for (const field of options.fields) {
      const saved = state?.inputs[field.name];
      let input: HTMLInputElement | HTMLTextAreaElement;
      if (field.type === 'bool') {
        input = h('input', { type: 'checkbox', name: `param-${field.name}` }) as HTMLInputElement;
        (input as HTMLInputElement).checked = saved !== undefined ? Boolean(saved) : Boolean(field.value);
      } else if (field.type === 'json' || field.type === 'expr') {
        input = h('textarea', { name: `param-${field.name}`, rows: 1, spellcheck: 'false' }) as HTMLTextAreaElement;
        input.value = saved !== undefined ? String(saved) : displayValue(field);
      } else {
        input = h('input', {
          type: field.type === 'int' || field.type === 'float' ? 'text' : 'text',
          inputmode: field.type === 'int' ? 'numeric' : field.type === 'float' ? 'decimal' : undefined,
          name: `param-${field.name}`,
          spellcheck: 'false'
        }) as HTMLInputElement;
        input.value = saved !== undefined ? String(saved) : displayValue(field);
      }
      this.inputs.set(field.name, input);
      input.addEventListener('input', () => this.changed());
      input.addEventListener('change', () => this.changed());
      const label = `${field.name}${field.type === 'expr' ? '' : ` (${field.type})`}`;
      form.append(this.row(field.name, label, input, field.help));
    }
    if (options.full) {
      form.append(h('h3', {}, 'Resources'));
      form.append(this.sizing);
      const o = state?.overrides ?? { cpu: '', memory: '', timeout: '' };
      form.append(this.row('cpu', 'CPU (cores)', this.textInput('cpu', o.cpu, 'proposed')));
      form.append(this.row('memory', 'Memory (GB)', this.textInput('memory', o.memory, 'proposed')));
      form.append(this.row('timeout', 'Time limit (min)', this.textInput('timeout', o.timeout, 'proposed')));
      form.append(h('h3', {}, 'Outputs'));
      const formats = h('div', { className: 'jp-NotebookJobs-formats' }, h('label', {}, h('input', { type: 'checkbox', checked: true, disabled: true }), ' notebook (ipynb)'));
      for (const f of FORMATS) {
        const box = h('input', { type: 'checkbox', name: `format-${f}` }) as HTMLInputElement;
        box.checked = state ? state.formats.includes(f) : true;
        this.inputs.set(`format-${f}`, box);
        formats.append(h('label', {}, box, f === 'html' ? ' HTML' : ' Markdown'));
      }
      form.append(this.row('output_formats', 'Formats', formats));
    }
    form.append(this.formError);
    this.node.append(form);
    if (options.error) {
      this.showError(options.error);
    }
    if (options.dryRun) {
      this.changed(0);
    }
  }

  private textInput(name: string, value: string, placeholder?: string): HTMLInputElement {
    const input = h('input', { type: 'text', name, placeholder, spellcheck: 'false' }) as HTMLInputElement;
    input.value = value;
    this.inputs.set(name, input);
    input.addEventListener('input', () => this.changed());
    return input;
  }

  private row(key: string, label: string, input: HTMLElement, help?: string): HTMLElement {
    const error = h('div', { className: 'jp-NotebookJobs-fieldError', 'data-field': key });
    this.errorNodes.set(key, error);
    return h(
      'div',
      { className: 'jp-NotebookJobs-row', 'data-field': key },
      h('label', { className: 'jp-NotebookJobs-label', title: help || null }, label),
      h('div', { className: 'jp-NotebookJobs-control' }, input, help ? h('div', { className: 'jp-NotebookJobs-help' }, help) : null, error)
    );
  }

  /** What the form holds now. */
  state(): IDialogState {
    const inputs: Record<string, string | boolean> = {};
    for (const f of this.options.fields) {
      const el = this.inputs.get(f.name)!;
      inputs[f.name] = f.type === 'bool' ? (el as HTMLInputElement).checked : el.value;
    }
    const value = (k: string) => this.inputs.get(k)?.value ?? '';
    return {
      name: value('name'),
      inputs,
      overrides: { cpu: value('cpu'), memory: value('memory'), timeout: value('timeout') },
      formats: FORMATS.filter(f => (this.inputs.get(`format-${f}`) as HTMLInputElement | undefined)?.checked)
    };
  }

  /** The submission, and what the form itself finds wrong (before asking the service). */
  read(): { submission: ISubmission; errors: Record<string, string> } {
    const state = this.state();
    const { parameters, errors } = changedParameters(this.options.fields, state.inputs);
    const over = readOverrides(state.overrides, this.bounds);
    const submission: ISubmission = { path: this.options.path, parameters };
    if (this.options.full) {
      submission.name = state.name.trim() || undefined;
      submission.output_formats = ['ipynb', ...state.formats];
      if (Object.keys(over.resources).length) {
        submission.resources = over.resources;
      }
      if (over.timeout !== undefined) {
        submission.timeout = over.timeout;
      }
    }
    return { submission, errors: { ...errors, ...over.errors } };
  }

  getValue(): ISubmission {
    return this.read().submission;
  }

  /** Show errors beside their fields (clearing the others). */
  showErrors(errors: Record<string, string>, formMessage = ''): void {
    for (const [key, node] of this.errorNodes) {
      node.textContent = errors[key] ?? '';
      node.parentElement?.parentElement?.classList.toggle('jp-mod-error', Boolean(errors[key]));
    }
    this.formError.textContent = formMessage;
  }

  /** A service error: beside the field it names, else for the whole form. */
  showError(error: JobsError): void {
    const keys = fieldsOfError(error.message, this.options.fields.map(f => f.name));
    if (keys.length) {
      this.showErrors(Object.fromEntries(keys.map(k => [k, error.message])));
    } else {
      this.showErrors({}, error.message);
    }
  }

  private changed(wait = 400): void {
    if (!this.options.dryRun) {
      this.showErrors(this.read().errors);
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
      return;
    }
    try {
      const job = await submitJob(submission, true);
      if (serial !== this.serial || this.isDisposed) {
        return; // an older answer
      }
      this.proposal = job;
      this.bounds = boundsOf(job);
      this.showProposal(job);
    } catch (e) {
      if (serial !== this.serial || this.isDisposed) {
        return;
      }
      const err = e as JobsError;
      if (err.status === 404 && /dry.?run|not found/i.test(err.message) && !this.proposal) {
        this.sizing.textContent = 'The service does not offer sizing ahead of a run; it sizes the job when it starts.';
        return;
      }
      this.showError(err);
      if (err.serviceDown) {
        this.sizing.textContent = err.message;
      }
    }
  }

  private showProposal(job: IJob): void {
    const predicted = job.resources.predicted ?? {};
    const allocated = job.resources.allocated ?? {};
    const timeout = allocated.timeout ?? (job as any).timeout;
    const alloc = { ...allocated, timeout };
    this.sizing.replaceChildren(
      ...[
      h('div', { className: 'jp-NotebookJobs-proposal' }, h('strong', {}, 'The job gets: '), resourcesText(alloc)),
      h('div', { className: 'jp-NotebookJobs-basis' }, `sized by ${basisText(String(allocated.basis ?? (predicted as any).basis ?? ''))}`),
      Object.keys(predicted).length
        ? h('div', { className: 'jp-NotebookJobs-help' }, `predicted need: ${resourcesText(predicted)}`)
        : null
      ].filter((n): n is HTMLElement => n !== null)
    );
    for (const key of ['cpu', 'memory', 'timeout'] as const) {
      const input = this.inputs.get(key);
      const v = key === 'timeout' ? timeout : allocated[key];
      if (input && v != null) {
        input.placeholder = key === 'memory' ? `${+(Number(v) / 1024 ** 3).toFixed(2)}` : key === 'timeout' ? `${+(Number(v) / 60).toFixed(1)}` : `${v}`;
        const b = this.bounds[key];
        input.title = b ? `between ${b[0]} and ${b[1]}` : '';
      }
    }
    // an override the service clamped: say so beside it
    const over = readOverrides(this.state().overrides, this.bounds);
    this.showErrors(clampNotes({ ...over.resources, timeout: over.timeout }, alloc));
  }

  dispose(): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
    }
    super.dispose();
  }
}

function basename(path: string): string {
  return path.split('/').pop() ?? path;
}
