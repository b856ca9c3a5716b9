/**
 * Calls to this extension's server part (`/notebook-jobs/api/…` of the Jupyter server: the
 * service's REST API at its own paths), which forwards them to the service with the server's
 * own Hub token: the browser never holds a service token and never calls the service itself.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import type { TranslationBundle } from '@jupyterlab/translation';

import { errorFromResponse, networkError } from './errors';
import { IJob } from './jobs';
import { IParameterField } from './params';
import type { ISweep } from './sweep';
import { AS_WRITTEN } from './translation';
import { withXsrf } from './xsrf';

/** Where the server extension serves the service's API on the Jupyter server. */
export const NAMESPACE = 'notebook-jobs/api';

/** The bundle the calls word their errors in: the app's, once the plugin is activated. */
let trans: TranslationBundle = AS_WRITTEN;

/**
 * Word the calls' errors in `bundle` (set once, at activation, as JupyterLab sets
 * `Dialog.translator`): every call of every view goes through here, none needs it passed.
 */
export function translateErrors(bundle: TranslationBundle): void {
  trans = bundle;
}

/** The server extension's URL for a path of the service's API (`jobs/…`). */
export function apiUrl(path: string, settings = ServerConnection.makeSettings()): string {
  return URLExt.join(settings.baseUrl, NAMESPACE, path);
}

/** A JSON call to the server extension; rejects with a JobsError carrying a readable message. */
export async function requestAPI<T = any>(path: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  if (init.body !== undefined && init.body !== null) {
    // JSON, said so: the forwarder passes the type on, and the service reads a body by it
    const headers = new Headers(init.headers);
    if (!headers.has('Content-Type')) {
      headers.set('Content-Type', 'application/json');
    }
    init = { ...init, headers };
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(apiUrl(path, settings), init, settings);
  } catch (e) {
    throw networkError(e, trans);
  }
  const text = await response.text();
  if (!response.ok) {
    throw errorFromResponse(response.status, text, trans);
  }
  return (text ? JSON.parse(text) : null) as T;
}

export interface ISubmission {
  /** The file's path in the Jupyter server's contents (read there, not uploaded by the browser). */
  path: string;
  parameters: Record<string, unknown>;
  name?: string;
  resources?: { cpu?: number; memory?: number | string };
  timeout?: number;
  output_formats?: string[];
}

/**
 * A workspace path schedule: the service reads `path` (relative to the user's workspace,
 * which is the Lab server's root in the demo) again at each run.
 */
export interface ISchedule {
  path: string;
  cron: string;
  /** IANA name, e.g. Europe/Paris */
  timezone: string;
  parameters: Record<string, unknown>;
  name?: string;
  resources?: { cpu?: number; memory?: number | string };
  timeout?: number;
  output_formats?: string[];
}

/** What a rerun may change besides its parameters. */
export interface IRerun {
  parameters?: Record<string, unknown>;
  resources?: { memory?: number | string; cpu?: number };
  timeout?: number;
}

/** Create a schedule. */
export function createSchedule(schedule: ISchedule): Promise<any> {
  return requestAPI('schedules', { method: 'POST', body: JSON.stringify(schedule) });
}

/**
 * Submit a workspace file (or, with dryRun, have the service validate and size it only: the
 * would-be job, with the notebook's parameters as `notebook_parameters`).
 */
export function submitJob(submission: ISubmission, dryRun = false): Promise<IJob> {
  return requestAPI<IJob>(`jobs${dryRun ? '?dry_run=1' : ''}`, {
    method: 'POST',
    body: JSON.stringify(submission)
  });
}

/**
 * Submit a sweep of a workspace file: its `parameters` map names to lists of values, and the
 * service makes one job per combination (their cartesian product).
 */
export function submitSweep(submission: ISubmission): Promise<ISweep> {
  return requestAPI<ISweep>('sweeps', { method: 'POST', body: JSON.stringify(submission) });
}

/** A sweep with a row per run; with a metric, its best run (the least or greatest final value, as `mode` says). */
export function getSweep(id: string, metric = '', mode = 'min'): Promise<ISweep> {
  return requestAPI<ISweep>(`sweeps/${id}${metric ? `?${new URLSearchParams({ metric, mode })}` : ''}`);
}

/** Cancel every run of a sweep not ended. */
export function cancelSweep(id: string): Promise<ISweep> {
  return requestAPI<ISweep>(`sweeps/${id}/cancel`, { method: 'POST' });
}

/** Run a sweep's failed runs again (each as its job's rerun), in their places. */
export function rerunFailed(id: string): Promise<ISweep> {
  return requestAPI<ISweep>(`sweeps/${id}/rerun`, { method: 'POST', body: JSON.stringify({ failed_only: true }) });
}

/** Delete a sweep with all its runs and their outputs (its live runs are cancelled first; a 409 while one is still stopping). */
export function deleteSweep(id: string): Promise<void> {
  return requestAPI<void>(`sweeps/${id}`, { method: 'DELETE' });
}

/** A metric's series of one job, as [{x: step, y: value}]. */
export async function metricSeries(id: string, name: string): Promise<{ x: number; y: number }[]> {
  const m = await requestAPI<{ series: { name: string; points: { step: number; value: number }[] }[] }>(
    `jobs/${id}/metrics?${new URLSearchParams({ name })}`
  );
  return (m.series[0]?.points ?? []).map(p => ({ x: p.step, y: p.value }));
}

/** One page of the user's jobs. */
export function listJobs(status: string, cursor: string | null, limit = 20): Promise<{ jobs: IJob[]; next_cursor: string | null }> {
  const query = new URLSearchParams({ limit: String(limit) });
  if (status) {
    query.set('status', status);
  }
  if (cursor) {
    query.set('cursor', cursor);
  }
  return requestAPI(`jobs?${query}`);
}

/** One job. */
export function getJob(id: string): Promise<IJob> {
  return requestAPI<IJob>(`jobs/${id}`);
}

/** Cancel a job. */
export function cancelJob(id: string): Promise<IJob> {
  return requestAPI<IJob>(`jobs/${id}/cancel`, { method: 'POST' });
}

/** Delete a job and its outputs. */
export function deleteJob(id: string): Promise<void> {
  return requestAPI<void>(`jobs/${id}`, { method: 'DELETE' });
}

/**
 * Run a job's notebook again, with what the body changes (parameters, resources, timeout);
 * with dryRun, the would-be job (its sizing and the reason for it), nothing run.
 */
export function rerunJob(id: string, body: IRerun = {}, dryRun = false): Promise<IJob> {
  return requestAPI<IJob>(`jobs/${id}/rerun${dryRun ? '?dry_run=1' : ''}`, {
    method: 'POST',
    body: JSON.stringify(body)
  });
}

/** Copy the executed notebook into the workspace; resolves to its path there. */
export function copyOutput(id: string): Promise<{ path: string }> {
  return requestAPI<{ path: string }>(`jobs/${id}/open`, { method: 'POST' });
}

/** A text body from the server extension (a log, an HTML render). */
async function requestText(path: string): Promise<string> {
  const settings = ServerConnection.makeSettings();
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(apiUrl(path, settings), {}, settings);
  } catch (e) {
    throw networkError(e, trans);
  }
  const text = await response.text();
  if (!response.ok) {
    throw errorFromResponse(response.status, text, trans);
  }
  return text;
}

/** The job's log, as text. */
export function jobLog(id: string): Promise<string> {
  return requestText(`jobs/${id}/logs`);
}

/** The job's HTML render, as text (shown in a sandboxed frame: the Hub forbids framing the server's URLs). */
export function jobHtml(id: string): Promise<string> {
  return requestText(`jobs/${id}/output?format=html`);
}

/** The URL of one of a job's outputs, served through the server extension (same origin). */
export function outputUrl(id: string, format: string, download = false): string {
  return apiUrl(`jobs/${id}/output?format=${format}${download ? '&download=1' : ''}`);
}

/**
 * The URL of a job's server-sent events, through the server extension, with the XSRF
 * token in its query (an EventSource cannot send it as a header; see ./xsrf.ts).
 */
export function eventsUrl(id: string): string {
  return withXsrf(apiUrl(`jobs/${id}/events`));
}

/**
 * The parameters of a job's notebook, as the service reads them: the rerun's own dry run
 * says them (whatever the input's kind), and stores nothing.
 */
export async function jobParameters(id: string): Promise<IParameterField[]> {
  const wouldBe = (await rerunJob(id, {}, true)) as IJob & { notebook_parameters?: IParameterField[] | null };
  return wouldBe.notebook_parameters ?? [];
}
