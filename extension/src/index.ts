/**
 * Notebook Jobs in JupyterLab: the "Submit as job" command (notebook toolbar, file
 * browser context menu and palette, placed by the settings schema), the results panel in
 * the right sidebar, and a notification when a job submitted here ends.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, MainAreaWidget, Notification, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker, INotebookWidgetFactory, NotebookPanel, NotebookWidgetFactory } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { h, IDialogState, SubmitBody } from './dialog';
import { JobsError } from './errors';
import { failureText, IJob, outputsOf } from './jobs';
import { JobWatch } from './live';
import { JobsPanel } from './panel';
import { IParameterField, parametersCellSource, parseParameters, scriptParametersSource } from './params';
import {
  cancelJob,
  copyOutput,
  createSchedule,
  IRerun,
  ISubmission,
  deleteJob,
  getJob,
  jobHtml,
  jobInput,
  jobLog,
  outputUrl,
  rerunJob,
  submitJob
} from './request';

const PLUGIN_ID = 'jupyterlab-notebook-jobs:plugin';

/** Where the server extension copies a job's executed notebook (see handlers.output_path). */
export const OUTPUTS_DIR = 'job-outputs/';

/**
 * The kernel preference of a job's output: none is started, and no kernel picker pops up
 * (`shouldStart: false`); the user may still pick one to run it again (`canStart` stays).
 */
const READ_ONLY_KERNEL = { shouldStart: false, autoStartDefault: false, shutdownOnDispose: false };

/** Whether a workspace path is a job's output copy. */
export function isJobOutput(path: string): boolean {
  return path.replace(/^[^/:]*:/, '').replace(/^\/+/, '').startsWith(OUTPUTS_DIR);
}

export namespace CommandIDs {
  export const submit = 'notebook-jobs:submit';
  export const panel = 'notebook-jobs:open-panel';
}

export const jobsIcon = new LabIcon({
  name: 'notebook-jobs:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    '<path class="jp-icon3" fill="#616161" d="M4 3h11l5 5v13H4V3zm10 1.5V9h4.5L14 4.5zM9 11v7l6-3.5L9 11z"/></svg>'
});

/** The parameters cell of an open notebook, or of a file read through the contents API. */
async function readFields(app: JupyterFrontEnd, path: string, panel: NotebookPanel | null): Promise<IParameterField[]> {
  let source: string | null = null;
  if (panel?.model) {
    for (const cell of Array.from(panel.model.cells)) {
      const tags = (cell.getMetadata('tags') as string[] | undefined) ?? [];
      if (cell.type === 'code' && tags.includes('parameters')) {
        source = cell.sharedModel.getSource();
        break;
      }
    }
  } else {
    const model = await app.serviceManager.contents.get(path, { content: true });
    source = model.type === 'notebook' ? parametersCellSource(model.content) : scriptParametersSource(String(model.content ?? ''));
  }
  return source === null ? [] : parseParameters(source);
}

/** A refusal or failure the user caused: in front of them until they dismiss it. */
export function showFailure(title: string, error: unknown): void {
  void showErrorMessage(title, (error as Error)?.message ?? String(error));
}

/**
 * Show a job's dialog until the user cancels or the service takes what ``act`` sends: its
 * answer, or null. A refusal (the form's own last word, or the service's) shows the dialog
 * again, with what the user entered and the error beside its field.
 */
async function askUntilTaken<T>(
  makeBody: (state: IDialogState | undefined, error: JobsError | undefined) => SubmitBody,
  title: string,
  accept: string,
  act: (body: SubmitBody, submission: ISubmission) => Promise<T>,
  state?: IDialogState
): Promise<T | null> {
  let error: JobsError | undefined;
  for (;;) {
    const body = makeBody(state, error);
    const result = await showDialog({
      title,
      body,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: accept, ariaLabel: `${accept} job` })],
      focusNodeSelector: 'input'
    });
    if (!result.button.accept) {
      return null;
    }
    state = body.state();
    const { submission, errors } = body.read();
    if (Object.keys(errors).length) {
      // (the dialog holds its button back while errors show; this is the last word)
      error = new JobsError(Object.entries(errors).map(([k, v]) => `${k} ${v}`).join('; '), 400);
      continue;
    }
    try {
      return await act(body, submission);
    } catch (e) {
      error = e as JobsError;
    }
  }
}

/** The Submit dialog: the new job (or, with "Repeat on a schedule", the new schedule), or null. */
function runDialog(path: string, fields: IParameterField[], title: string): Promise<{ job?: IJob; schedule?: any } | null> {
  return askUntilTaken(
    (state, error) => new SubmitBody({ path, fields, dryRun: true, full: true, state, error, schedule: true }),
    title,
    'Submit',
    async (body, submission) => {
      const schedule = body.schedule();
      return schedule ? { schedule: await createSchedule(schedule) } : { job: await submitJob(submission) };
    }
  );
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Submit notebooks as Notebook Jobs and follow their results.',
  autoStart: true,
  requires: [IDocumentManager, INotebookTracker],
  optional: [ICommandPalette, IDefaultFileBrowser, INotebookWidgetFactory],
  activate: (
    app: JupyterFrontEnd,
    docManager: IDocumentManager,
    notebooks: INotebookTracker,
    palette: ICommandPalette | null,
    fileBrowser: IDefaultFileBrowser | null,
    notebookFactory: NotebookWidgetFactory.IFactory | null
  ) => {
    const { commands, shell } = app;

    // A job's output is opened to read, however it is opened (Open in the panel, the file
    // browser, the layout Lab restores on reload): no kernel starts for it, and it stays
    // unmodified (a kernel writes its language_info, which marks the copy unsaved). The
    // preference is set as the widget is made, before its context starts a session.
    notebookFactory?.widgetCreated.connect((_, widget) => {
      const session = widget.context.sessionContext;
      if (isJobOutput(widget.context.localPath ?? widget.context.path)) {
        session.kernelPreference = { ...session.kernelPreference, ...READ_ONLY_KERNEL };
      }
    });

    /**
     * The executed notebook, copied into the workspace and opened to read: no kernel is
     * started for it (the user can pick one to run it again), and it opens saved, as copied.
     */
    const openOutput = async (job: IJob) => {
      const { path } = await copyOutput(job.id);
      const widget = docManager.openOrReveal(path, 'default', undefined, {}, READ_ONLY_KERNEL);
      if (!widget) {
        throw new Error(`Cannot open ${path}`);
      }
      const context = docManager.contextForWidget(widget);
      await context?.ready;
      if (context && !context.model.readOnly) {
        // loading a copy may touch it (ids, metadata): it is still the saved file
        context.model.dirty = false;
        await (widget as any).revealed;
        context.model.dirty = false;
      }
    };

    const watchUntilEnd = (job: IJob) => {
      // independent of the panel: the user hears about the end even with the panel closed
      const watch = new JobWatch(job.id, () => undefined, ended => {
        const why = failureText(ended);
        const message = `Job "${ended.name}" ${ended.status}` + (why ? `: ${why}` : '');
        const actions = outputsOf(ended).includes('ipynb')
          ? [{ label: 'Open output', callback: () => void openOutput(ended).catch(e => showFailure('Cannot open the output', e)) }]
          : [];
        const notify = ended.status === 'succeeded' ? Notification.success : ended.status === 'failed' ? Notification.error : Notification.warning;
        notify(message, { autoClose: 10000, actions });
      });
      watch.start();
    };

    const panel = new JobsPanel({
      open: openOutput,
      html: async job => {
        // srcdoc in a frame without allow-same-origin: the render's scripts get an opaque
        // origin, away from the user's server and its cookies
        const frame = h('iframe', {
          sandbox: 'allow-scripts',
          className: 'jp-NotebookJobs-html',
          title: `${job.name} (HTML)`
        }) as HTMLIFrameElement;
        frame.srcdoc = await jobHtml(job.id);
        const content = new Widget({ node: h('div', { className: 'jp-NotebookJobs-htmlView' }, frame) });
        const widget = new MainAreaWidget({ content });
        widget.id = `notebook-jobs-html-${job.id}`;
        widget.title.label = `${job.name} (HTML)`;
        widget.title.closable = true;
        widget.title.icon = jobsIcon;
        shell.add(widget, 'main');
        shell.activateById(widget.id);
      },
      log: async job => {
        const pre = h('pre', { className: 'jp-NotebookJobs-log' }, await jobLog(job.id) || '(the log is empty)');
        const widget = new MainAreaWidget({ content: new Widget({ node: h('div', { className: 'jp-NotebookJobs-logView' }, pre) }) });
        widget.id = `notebook-jobs-log-${job.id}-${Date.now()}`;
        widget.title.label = `${job.name} (log)`;
        widget.title.closable = true;
        widget.title.icon = jobsIcon;
        shell.add(widget, 'main');
        shell.activateById(widget.id);
      },
      download: job => {
        const a = h('a', { href: outputUrl(job.id, 'ipynb', true), download: '' });
        document.body.append(a);
        a.click();
        a.remove();
      },
      cancel: job => cancelJob(job.id),
      rerun: async listed => {
        // a list of jobs cuts long parameter values short (parameters_cut): the job itself has them whole
        const job = listed.parameters_cut?.length ? await getJob(listed.id) : listed;
        const input = await jobInput(job.id);
        const source = parametersCellSource(input);
        const fields = source === null ? [] : parseParameters(source);
        // start from the parameters this job ran with
        const state: IDialogState = { name: job.name, inputs: {}, overrides: { cpu: '', memory: '', timeout: '' }, formats: [] };
        state.schedule = undefined;
        for (const f of fields) {
          if (f.name in (job.parameters ?? {})) {
            const v = job.parameters[f.name];
            state.inputs[f.name] = f.type === 'bool' ? Boolean(v) : typeof v === 'string' && f.type === 'str' ? v : JSON.stringify(v);
          }
        }
        const next = await runDialogWithState(job, fields, state);
        if (next) {
          watchUntilEnd(next);
        }
        return next;
      },
      remove: async job => {
        const result = await showDialog({
          title: 'Delete job',
          body: `Delete "${job.name}" and its outputs? This cannot be undone.`,
          buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
        });
        if (!result.button.accept) {
          return false;
        }
        await deleteJob(job.id);
        return true;
      }
    });
    panel.title.icon = jobsIcon;
    shell.add(panel, 'right', { rank: 900 });

    const runDialogWithState = (job: IJob, fields: IParameterField[], state: IDialogState) =>
      askUntilTaken(
        // the service's rerun dry run sizes the would-be job (more of what a killed run lacked)
        (state, error) => new SubmitBody({
          path: job.name, fields, dryRun: false, full: false, state, error,
          rerunDryRun: () => rerunJob(job.id, {}, true)
        }),
        `Rerun "${job.name}"`,
        'Rerun',
        (body, submission) => {
          // only what the user changed: the service keeps the rest of the job (and sizes it)
          const changes = body.rerunChanges();
          const request: IRerun = { parameters: submission.parameters };
          if (changes.resources) {
            request.resources = changes.resources;
          }
          if (changes.timeout !== undefined) {
            request.timeout = changes.timeout;
          }
          return rerunJob(job.id, request);
        },
        state
      );

    /** The file the command acts on: the file browser's selection, or the current notebook. */
    const target = (args: any): { path: string; panel: NotebookPanel | null } | null => {
      if (args?.path) {
        return { path: String(args.path), panel: null };
      }
      if (args?.fromBrowser && fileBrowser) {
        const item = fileBrowser.selectedItems().next();
        if (item && !item.done && item.value) {
          return { path: item.value.path, panel: null };
        }
        return null;
      }
      // the notebook whose tab is active: the tracker's current one can lag behind when the
      // toolbar button is clicked without the notebook taking focus
      const active = shell.currentWidget;
      const current = active && notebooks.has(active) ? (active as NotebookPanel) : notebooks.currentWidget;
      return current ? { path: current.context.path, panel: current } : null;
    };

    commands.addCommand(CommandIDs.submit, {
      label: 'Submit as job',
      caption: 'Run this notebook as a job on the Hub (sized and sandboxed), and follow it in the Notebook jobs panel',
      icon: args => (args.toolbar ? jobsIcon : undefined),
      isEnabled: args => target(args) !== null,
      execute: async args => {
        const t = target(args);
        if (!t) {
          return;
        }
        // run what the user sees: unsaved edits are saved first
        const open = t.panel ?? (docManager.findWidget(t.path) as NotebookPanel | undefined) ?? null;
        const context = open ? docManager.contextForWidget(open) : undefined;
        // a notebook clicked right after opening may not have its cells yet
        await context?.ready;
        if (context?.model.dirty && !context.model.readOnly) {
          await context.save();
        }
        let fields: IParameterField[];
        try {
          fields = await readFields(app, t.path, t.panel ?? (open instanceof NotebookPanel ? open : null));
        } catch (e) {
          // (e.g. a notebook deleted since the file browser listed it)
          showFailure(`Cannot submit ${t.path.split('/').pop()}`, new Error(`Cannot read ${t.path}: ${(e as Error).message}`));
          return;
        }
        const done = await runDialog(t.path, fields, `Submit "${t.path.split('/').pop()}" as a job`);
        if (done?.schedule) {
          const next = done.schedule.next_runs?.[0];
          Notification.success(
            `Scheduled "${done.schedule.name ?? t.path}" (${done.schedule.cron}, ${done.schedule.timezone})` +
              (next ? `; next run ${new Date(next).toLocaleString()}` : ''),
            { autoClose: 8000 }
          );
          return;
        }
        const job = done?.job;
        if (!job) {
          return;
        }
        panel.add(job);
        watchUntilEnd(job);
        Notification.info(`Submitted job "${job.name}"`, { autoClose: 4000 });
        shell.activateById(panel.id);
      }
    });

    commands.addCommand(CommandIDs.panel, {
      label: 'Show Notebook Jobs',
      caption: 'The jobs you submitted, with their status and outputs',
      execute: () => shell.activateById(panel.id)
    });

    if (palette) {
      palette.addItem({ command: CommandIDs.submit, category: 'Notebook Jobs' });
      palette.addItem({ command: CommandIDs.panel, category: 'Notebook Jobs' });
    }
  }
};

export default plugin;
