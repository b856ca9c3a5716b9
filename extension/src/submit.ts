/**
 * The Submit and Rerun dialogs as flows: show the form, read it, send it; show it again,
 * with what the user entered and the error beside its field, until the service takes it or
 * the user cancels.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';

import { isolated } from './bidi';
import { IDialogState, SubmitBody } from './dialog';
import { JobsError } from './errors';
import { IJob } from './jobs';
import { inputOf, namesMap, ownValue } from './params';
import { createSchedule, IRerun, ISubmission, jobParameters, rerunJob, submitJob, submitSweep } from './request';
import type { ISweep } from './sweep';

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
  trans: TranslationBundle,
  state?: IDialogState
): Promise<T | null> {
  let error: JobsError | undefined;
  for (;;) {
    const body = makeBody(state, error);
    const result = await showDialog({
      title,
      body,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: accept, ariaLabel: trans.__('%1 job', accept) })],
      focusNodeSelector: 'input'
    });
    if (!result.button.accept) {
      return null;
    }
    state = body.state();
    error = undefined;
    if (Object.keys(body.read().errors).length) {
      // (the dialog holds its button back while errors show; the form shows them again itself)
      continue;
    }
    try {
      return await act(body, body.read().submission);
    } catch (e) {
      error = e as JobsError;
    }
  }
}

/**
 * The Submit dialog of a workspace file: the new job (or, with "Repeat on a schedule", the new
 * schedule; with "Sweep", the new sweep), or null.
 */
export function submitDialog(path: string, trans: TranslationBundle): Promise<{ job?: IJob; schedule?: any; sweep?: ISweep } | null> {
  return askUntilTaken(
    (state, error) => new SubmitBody({ path, dryRun: true, full: true, state, error, schedule: true, sweep: true, trans }),
    trans.__('Submit "%1" as a job', path.split('/').pop() ?? path),
    trans.__('Submit'),
    async (body, submission) => {
      const schedule = body.schedule();
      if (schedule) {
        return { schedule: await createSchedule(schedule) };
      }
      return body.sweeping() ? { sweep: await submitSweep(submission) } : { job: await submitJob(submission) };
    },
    trans
  );
}

/**
 * The Rerun dialog of a job, starting from the parameters it ran with (and, where the
 * service sizes a rerun ahead of it, the would-be job's memory and time limit): the new job, or null.
 */
export async function rerunDialog(job: IJob, trans: TranslationBundle): Promise<IJob | null> {
  const fields = await jobParameters(job.id);
  const state: IDialogState = { fields, name: job.name, inputs: namesMap(), overrides: { cpu: '', memory: '', timeout: '' }, formats: [] };
  for (const f of fields) {
    const value = ownValue(job.parameters, f.name);
    if (value !== undefined) {
      state.inputs[f.name] = inputOf(f, value);
    }
  }
  return askUntilTaken(
    // the service's rerun dry run sizes the would-be job (more of what a killed run lacked)
    (state, error) =>
      new SubmitBody({
        path: job.name,
        dryRun: false,
        full: false,
        state,
        error,
        trans,
        rerunDryRun: () => rerunJob(job.id, {}, true)
      }),
    trans.__('Rerun "%1"', isolated(job.name)),
    trans.__('Rerun'),
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
    trans,
    state
  );
}
