/**
 * A job's action buttons, as the panel's rows and a sweep's runs show them: each runs one of
 * the extension's commands on the job (`commands.ts`), and what goes wrong stays in front of
 * the user until dismissed.
 */
import { Notification } from '@jupyterlab/apputils';
import type { CommandRegistry } from '@lumino/commands';

import { h } from './dom';
import type { IJobRef } from './views';

/** Run an action; a failure is an error notification that stays until dismissed. */
export async function act(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    Notification.error((e as Error).message, { autoClose: false });
  }
}

/** Run one of the extension's commands on a job; `then` gets what it answered. */
export function runOnJob<T>(commands: CommandRegistry, command: string, job: IJobRef, then?: (result: T) => void): Promise<void> {
  return act(async () => {
    const result = (await commands.execute(command, { id: job.id, name: job.name })) as T;
    then?.(result);
  });
}

/** One of a job's buttons; `data-action` names what it does (for people reading the page, and tests). */
export function actionButton(label: string, action: string, onclick: () => unknown, enabled = true, title: string | null = null): HTMLButtonElement {
  return h('button', { className: 'jp-NotebookJobs-action', 'data-action': action, disabled: !enabled, onclick, title }, label) as HTMLButtonElement;
}
