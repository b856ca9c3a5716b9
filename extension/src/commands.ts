/**
 * The extension's commands: "Submit as job" (the notebook toolbar, the file browser's
 * context menu and the palette place it, as the settings schema says), the panel, and what
 * can be done with a job (the panel's buttons run these with the job's id).
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, MainAreaWidget, Notification, showDialog, showErrorMessage, WidgetTracker } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { TranslationBundle } from '@jupyterlab/translation';
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { isolated } from './bidi';
import { CommandIDs } from './commandIds';
import { failureText, IJob, outputsOf } from './jobs';
import { JobWatch } from './live';
import type { JobsPanel } from './panel';
import { cancelJob, deleteJob, getJob } from './request';
import { rerunDialog, submitDialog } from './submit';
import { SweepView, sweepView } from './sweep';
import { download, htmlView, IJobRef, jobsIcon, logView, openOutput } from './views';

export { CommandIDs };

/** What the commands work with. */
export interface IJobsContext {
  app: JupyterFrontEnd;
  docManager: IDocumentManager;
  notebooks: INotebookTracker;
  fileBrowser: IDefaultFileBrowser | null;
  panel: JobsPanel;
  /** The sweeps' views open now: Lab's layout restorer opens them again on a reload. */
  sweeps: WidgetTracker<MainAreaWidget<SweepView>>;
  trans: TranslationBundle;
}

/** A refusal or failure the user caused: in front of them until they dismiss it. */
export function showFailure(title: string, error: unknown): void {
  void showErrorMessage(title, (error as Error)?.message ?? String(error));
}

/** The job a command's arguments name. */
function jobOf(args: ReadonlyPartialJSONObject): IJobRef {
  return { id: String(args.id), name: String(args.name ?? args.id) };
}

/**
 * Tell the user when a job submitted here ends, with its output to open: independent of
 * the panel, so it is heard with the panel closed.
 */
export function watchUntilEnd(ctx: IJobsContext, job: IJob): void {
  const { trans } = ctx;
  const watch = new JobWatch(job.id, () => undefined, ended => {
    const why = failureText(ended, trans);
    const message = trans.__('Job "%1" %2', isolated(ended.name), trans.__(ended.status)) + (why ? `: ${why}` : '');
    const actions = outputsOf(ended).includes('ipynb')
      ? [{ label: trans.__('Open output'), callback: () => void ctx.app.commands.execute(CommandIDs.openOutput, { id: ended.id, name: ended.name }) }]
      : [];
    const notify = ended.status === 'succeeded' ? Notification.success : ended.status === 'failed' ? Notification.error : Notification.warning;
    notify(message, { autoClose: 10000, actions });
  });
  watch.start();
}

/**
 * The file "Submit as job" acts on: the notebook whose toolbar button was clicked (`panel`),
 * a `path`, the file browser's selection (`fromBrowser`), or else the notebook whose tab is active.
 */
function submitTarget(ctx: IJobsContext, args: ReadonlyPartialJSONObject): { path: string; panel: NotebookPanel | null } | null {
  if (args.panel) {
    const panel = ctx.notebooks.find(w => w.id === args.panel) ?? null;
    return panel ? { path: panel.context.path, panel } : null;
  }
  if (args.path) {
    return { path: String(args.path), panel: null };
  }
  if (args.fromBrowser) {
    const item = ctx.fileBrowser?.selectedItems().next();
    return item && !item.done && item.value ? { path: item.value.path, panel: null } : null;
  }
  const active = ctx.app.shell.currentWidget;
  const current = active && ctx.notebooks.has(active) ? (active as NotebookPanel) : ctx.notebooks.currentWidget;
  return current ? { path: current.context.path, panel: current } : null;
}

/** "Submit as job": save what the user sees, then the Submit dialog; the new job goes into the panel. */
export function addSubmitCommand(ctx: IJobsContext): void {
  const { app, docManager, panel, trans } = ctx;
  app.commands.addCommand(CommandIDs.submit, {
    label: trans.__('Submit as job'),
    caption: trans.__('Run this notebook as a job on the Hub (sized and sandboxed), and follow it in the Notebook jobs panel'),
    icon: args => (args.toolbar ? jobsIcon : undefined),
    // (a toolbar's button is made before its notebook is tracked: it is always enabled)
    isEnabled: args => Boolean(args.panel) || submitTarget(ctx, args) !== null,
    execute: async args => {
      const target = submitTarget(ctx, args);
      if (!target) {
        return;
      }
      const name = target.path.split('/').pop() ?? target.path;
      // run what the user sees: unsaved edits are saved first
      const open = target.panel ?? docManager.findWidget(target.path) ?? null;
      const context = open ? docManager.contextForWidget(open) : undefined;
      await context?.ready; // a notebook clicked right after opening may not have its cells yet
      if (context?.model.dirty && !context.model.readOnly) {
        await context.save();
      }
      try {
        // (the file browser may list a file deleted since)
        await app.serviceManager.contents.get(target.path, { content: false });
      } catch (e) {
        showFailure(trans.__('Cannot submit %1', name), new Error(trans.__('Cannot read %1: %2', target.path, (e as Error).message)));
        return;
      }
      const done = await submitDialog(target.path, trans);
      if (done?.schedule) {
        const next = done.schedule.next_runs?.[0];
        Notification.success(
          trans.__('Scheduled "%1" (%2, %3)', isolated(done.schedule.name ?? target.path), done.schedule.cron, done.schedule.timezone) +
            (next ? trans.__('; next run %1', new Date(next).toLocaleString()) : ''),
          { autoClose: 8000 }
        );
        return;
      }
      if (done?.sweep) {
        Notification.info(trans._n('Submitted sweep "%2" of %1 run', 'Submitted sweep "%2" of %1 runs', done.sweep.size, isolated(done.sweep.name)), { autoClose: 4000 });
        void panel.load(false);
        await app.commands.execute(CommandIDs.openSweep, { id: done.sweep.id });
        return;
      }
      if (!done?.job) {
        return;
      }
      panel.add(done.job);
      watchUntilEnd(ctx, done.job);
      Notification.info(trans.__('Submitted job "%1"', isolated(done.job.name)), { autoClose: 4000 });
      app.shell.activateById(panel.id);
    }
  });
}

/** "Show Notebook Jobs": the panel in the right sidebar. */
export function addPanelCommand(ctx: IJobsContext): void {
  const { app, panel, trans } = ctx;
  app.commands.addCommand(CommandIDs.panel, {
    label: trans.__('Show Notebook Jobs'),
    caption: trans.__('The jobs you submitted, with their status and outputs'),
    execute: () => app.shell.activateById(panel.id)
  });
}

/** What can be done with a job: each a command taking `{id, name}`. */
export function addJobCommands(ctx: IJobsContext): void {
  const { app, docManager, sweeps, trans } = ctx;
  const { commands, shell } = app;
  const show = (widget: Parameters<typeof shell.add>[0]) => {
    shell.add(widget, 'main');
    shell.activateById(widget.id);
  };
  commands.addCommand(CommandIDs.openOutput, {
    label: trans.__('Open the output notebook'),
    execute: args => openOutput(docManager, jobOf(args).id)
  });
  commands.addCommand(CommandIDs.showHtml, {
    label: trans.__("Show the output's HTML"),
    execute: async args => show(await htmlView(jobOf(args), trans))
  });
  commands.addCommand(CommandIDs.showLog, {
    label: trans.__("Show the job's log"),
    execute: async args => show(await logView(jobOf(args), trans))
  });
  commands.addCommand(CommandIDs.download, {
    label: trans.__('Download the output notebook'),
    execute: args => download(jobOf(args).id)
  });
  commands.addCommand(CommandIDs.openSweep, {
    label: trans.__('Open the sweep'),
    caption: trans.__("A sweep's runs side by side: their parameters, status and metrics"),
    execute: args => {
      const id = String(args.id);
      const open = sweeps.find(w => w.content.sweepId === id);
      if (open) {
        shell.activateById(open.id);
        return;
      }
      const view = sweepView(id, commands, trans);
      void sweeps.add(view);
      show(view);
    }
  });
  commands.addCommand(CommandIDs.cancel, {
    label: trans.__('Cancel the job'),
    execute: args => cancelJob(jobOf(args).id)
  });
  commands.addCommand(CommandIDs.rerun, {
    label: trans.__('Rerun the job…'),
    execute: async args => {
      // the job itself: a list cuts long parameter values short
      const next = await rerunDialog(await getJob(jobOf(args).id), trans);
      if (next) {
        watchUntilEnd(ctx, next);
      }
      return next;
    }
  });
  commands.addCommand(CommandIDs.remove, {
    label: trans.__('Delete the job…'),
    execute: async args => {
      const job = jobOf(args);
      const result = await showDialog({
        title: trans.__('Delete job'),
        body: trans.__('Delete "%1" and its outputs? This cannot be undone.', isolated(job.name)),
        buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: trans.__('Delete') })]
      });
      if (!result.button.accept) {
        return false;
      }
      await deleteJob(job.id);
      return true;
    }
  });
}
