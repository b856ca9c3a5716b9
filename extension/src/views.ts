/**
 * What the panel opens of a job: its executed notebook (copied into the workspace and opened
 * to read), its HTML render in a sandboxed frame, its log, a download of its notebook.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import type { TranslationBundle } from '@jupyterlab/translation';
import { IFrame, LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { isolated } from './bidi';
import { h } from './dom';
import { copyOutput, jobHtml, jobLog, outputUrl } from './request';

/** Where the server extension copies a job's executed notebook (see handlers.output_path). */
export const OUTPUTS_DIR = 'job-outputs/';

/**
 * The kernel preference of a job's output: none is started, and no kernel picker pops up
 * (`shouldStart: false`); the user may still pick one to run it again (`canStart` stays).
 */
export const READ_ONLY_KERNEL = { shouldStart: false, autoStartDefault: false, shutdownOnDispose: false };

/** Whether a workspace path is a job's output copy. */
export function isJobOutput(path: string): boolean {
  return path.replace(/^[^/:]*:/, '').replace(/^\/+/, '').startsWith(OUTPUTS_DIR);
}

/** A job as the views need it: its id, and its name for titles. */
export interface IJobRef {
  id: string;
  name: string;
}

export const jobsIcon = new LabIcon({
  name: 'notebook-jobs:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    '<path class="jp-icon3" fill="#616161" d="M4 3h11l5 5v13H4V3zm10 1.5V9h4.5L14 4.5zM9 11v7l6-3.5L9 11z"/></svg>'
});

/**
 * The executed notebook, copied into the workspace and opened to read: no kernel is
 * started for it (the user can pick one to run it again), and it opens saved, as copied.
 */
export async function openOutput(docManager: IDocumentManager, id: string): Promise<void> {
  const { path } = await copyOutput(id);
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
}

/** A main-area tab for one of the extension's views. */
export function tab<T extends Widget>(content: T, id: string, label: string): MainAreaWidget<T> {
  const widget = new MainAreaWidget({ content });
  widget.id = id;
  widget.title.label = label;
  widget.title.closable = true;
  widget.title.icon = jobsIcon;
  return widget;
}

/**
 * The job's HTML render in JupyterLab's IFrame widget, as `srcdoc` in a frame sandboxed
 * without `allow-same-origin`: the render's scripts get an opaque origin, away from the
 * user's server and its cookies (and no URL of the server is framed: the Hub forbids it).
 */
export async function htmlView(job: IJobRef, trans: TranslationBundle): Promise<MainAreaWidget<IFrame>> {
  const frame = new IFrame({ sandbox: ['allow-scripts'], referrerPolicy: 'no-referrer' });
  frame.addClass('jp-NotebookJobs-htmlView');
  const label = trans.__('%1 (HTML)', isolated(job.name));
  const iframe = frame.node.querySelector('iframe')!;
  iframe.className = 'jp-NotebookJobs-html';
  iframe.title = label;
  iframe.srcdoc = await jobHtml(job.id);
  return tab(frame, `notebook-jobs-html-${job.id}`, label);
}

/** The job's log, as text in a tab of its own. */
export async function logView(job: IJobRef, trans: TranslationBundle): Promise<MainAreaWidget<Widget>> {
  const pre = h('pre', { className: 'jp-NotebookJobs-log' }, (await jobLog(job.id)) || trans.__('(the log is empty)'));
  const content = new Widget({ node: h('div', { className: 'jp-NotebookJobs-logView' }, pre) });
  return tab(content, `notebook-jobs-log-${job.id}-${Date.now()}`, trans.__('%1 (log)', isolated(job.name)));
}

/** Download the job's executed notebook (through the server extension: same origin). */
export function download(id: string): void {
  const a = h('a', { href: outputUrl(id, 'ipynb', true), download: '' });
  document.body.append(a);
  a.click();
  a.remove();
}
