/**
 * The results panel's state: the user's jobs as the service reports them, kept by a pure
 * reducer so that list pages, live events and local actions merge the same way
 * everywhere (and can be tested without a browser).
 */
import type { TranslationBundle } from '@jupyterlab/translation';

import { AS_WRITTEN } from './translation';

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const TERMINAL: JobStatus[] = ['succeeded', 'failed', 'cancelled'];
export const STATUSES: JobStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

export interface IResources {
  cpu?: number;
  memory?: number;
  gpu?: number;
  timeout?: number;
  basis?: string;
  [key: string]: unknown;
}

export interface IJob {
  id: string;
  name: string;
  status: JobStatus;
  parameters: Record<string, unknown>;
  /** In a list of jobs: the parameters whose values were cut short there. */
  parameters_cut?: string[];
  /** phase: what a running job waits for before its cells ("building environment") */
  progress: { cells_done: number | null; cells_total: number | null; phase?: string | null };
  resources: {
    requested?: IResources;
    predicted?: IResources;
    allocated?: IResources;
    used?: IResources;
  };
  input?: { kind?: string; name?: string; path?: string | null };
  output_formats?: string[];
  /** Whether the service keeps an output notebook of the job (absent from older services). */
  has_output?: boolean;
  /** The formats fetchable now (absent from older services). */
  outputs?: string[];
  /** The run did not finish (cancelled, timed out, killed): its output is partial. */
  partial?: boolean;
  /** Who cancelled the job (a user name), or null. */
  cancelled_by?: string | null;
  /** The sweep the job is a run of, or null. */
  sweep_id?: string | null;
  error: { reason: string; message: string; cell: number | null; summary?: string } | null;
  created: string | null;
  started: string | null;
  finished: string | null;
  /** The cell running now (from the live events; not part of the REST model). */
  running_cell?: number | null;
}

export interface IJobsState {
  /** Newest first, as the service lists them. */
  jobs: IJob[];
  /** The cursor of the next page, null when this is the last. */
  nextCursor: string | null;
  /** The status filter in force ('' for all). */
  filter: string;
  /** A message for the whole panel (e.g. the service is down), or null. */
  error: string | null;
}

export type JobsAction =
  | { type: 'page'; jobs: IJob[]; nextCursor: string | null; append: boolean; merge?: boolean }
  | { type: 'job'; job: IJob }
  | { type: 'event'; id: string; event: Record<string, any> }
  | { type: 'removed'; id: string }
  | { type: 'filter'; filter: string }
  | { type: 'error'; message: string | null };

export const INITIAL: IJobsState = { jobs: [], nextCursor: null, filter: '', error: null };

/** Whether a job has ended. */
export function isTerminal(status: string): boolean {
  return (TERMINAL as string[]).includes(status);
}

function matches(filter: string, job: IJob): boolean {
  return !filter || filter.split(',').includes(job.status);
}

function upsert(jobs: IJob[], job: IJob, filter: string): IJob[] {
  const i = jobs.findIndex(j => j.id === job.id);
  if (i < 0) {
    // a job new to the list is the newest one (just submitted)
    return matches(filter, job) ? [job, ...jobs] : jobs;
  }
  const old = jobs[i];
  // a late list page must not roll back a job the events already moved on
  if (isTerminal(old.status) && !isTerminal(job.status)) {
    return jobs;
  }
  const merged = { ...job, running_cell: isTerminal(job.status) ? null : old.running_cell };
  const out = jobs.slice();
  out[i] = merged;
  return out;
}

/** The next state after an action. */
export function reduce(state: IJobsState, action: JobsAction): IJobsState {
  switch (action.type) {
    case 'page': {
      if (!action.append) {
        // keep what the events know that the page might not yet (same rule as upsert)
        const known = new Map(state.jobs.map(j => [j.id, j]));
        const jobs = action.jobs.map(j => {
          const old = known.get(j.id);
          return old && isTerminal(old.status) && !isTerminal(j.status) ? old : j;
        });
        if (action.merge) {
          // a refresh of the first page keeps the older pages the user has opened
          const ids = new Set(jobs.map(j => j.id));
          const rest = state.jobs.filter(j => !ids.has(j.id));
          return { ...state, jobs: [...jobs, ...rest], nextCursor: rest.length ? state.nextCursor : action.nextCursor, error: null };
        }
        return { ...state, jobs, nextCursor: action.nextCursor, error: null };
      }
      const seen = new Set(state.jobs.map(j => j.id));
      return {
        ...state,
        jobs: [...state.jobs, ...action.jobs.filter(j => !seen.has(j.id))],
        nextCursor: action.nextCursor,
        error: null
      };
    }
    case 'job':
      return { ...state, jobs: upsert(state.jobs, action.job, state.filter) };
    case 'event': {
      const e = action.event;
      if (e.event === 'status' && e.job) {
        return { ...state, jobs: upsert(state.jobs, e.job as IJob, state.filter) };
      }
      const i = state.jobs.findIndex(j => j.id === action.id);
      if (i < 0) {
        return state;
      }
      const job = { ...state.jobs[i], progress: { ...state.jobs[i].progress } };
      if (e.event === 'started') {
        job.progress = { cells_done: 0, cells_total: e.cells_total ?? null };
      } else if (e.event === 'cell_started') {
        job.running_cell = e.cell;
      } else if (e.event === 'cell_finished') {
        job.progress.cells_done = e.cells_done ?? job.progress.cells_done;
      } else {
        return state; // log lines and runner details do not change the row
      }
      const jobs = state.jobs.slice();
      jobs[i] = job;
      return { ...state, jobs };
    }
    case 'removed':
      return { ...state, jobs: state.jobs.filter(j => j.id !== action.id) };
    case 'filter':
      return { ...state, filter: action.filter, jobs: state.jobs.filter(j => matches(action.filter, j)) };
    case 'error':
      return { ...state, error: action.message };
  }
}

/** "3/5 cells" (or the cell running now), for the row. */
export function progressText(job: IJob, trans: TranslationBundle = AS_WRITTEN): string {
  const { cells_done, cells_total, phase } = job.progress ?? {};
  if (phase) {
    return phase;
  }
  if (cells_total == null) {
    return '';
  }
  return job.status === 'running' && job.running_cell != null
    ? trans.__('%1/%2 cells (cell %3)', cells_done ?? 0, cells_total, job.running_cell)
    : trans.__('%1/%2 cells', cells_done ?? 0, cells_total);
}

/** Seconds between two ISO times (or until now), as "4.2 s" / "3 min 5 s". */
export function durationText(start: string | null, end: string | null, trans: TranslationBundle = AS_WRITTEN, now: number = Date.now()): string {
  if (!start) {
    return '';
  }
  return secondsText(Math.max(0, ((end ? Date.parse(end) : now) - Date.parse(start)) / 1000), trans);
}

/** A number of seconds as "4.2 s" / "3 min 5 s" / "2 h 5 min". */
export function secondsText(seconds: number, trans: TranslationBundle = AS_WRITTEN): string {
  if (seconds < 60) {
    return trans.__('%1 s', seconds.toFixed(1));
  }
  const m = Math.floor(seconds / 60);
  return m < 60 ? trans.__('%1 min %2 s', m, Math.round(seconds % 60)) : trans.__('%1 h %2 min', Math.floor(m / 60), m % 60);
}

/** Bytes as "512 MiB" / "2 GiB" (binary units, as the service counts them). */
export function bytesText(n: number | undefined | null): string {
  if (n == null) {
    return '';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 || Number.isInteger(v) ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

/**
 * The formats of the job's output that can be fetched now, as the service says: `outputs`
 * when it has an output (`has_output`); nothing when it has none, or does not say.
 */
export function outputsOf(job: IJob): string[] {
  return job.has_output ? job.outputs ?? ['ipynb'] : [];
}

/** Whether the output is of a run that did not finish (the service's `partial`). */
export function isPartial(job: IJob): boolean {
  return Boolean(job.partial) && outputsOf(job).length > 0;
}

/** Words for the reasons of a service that sends no `error.summary` yet (never the raw code). */
function reasonWords(reason: string, trans: TranslationBundle): string {
  const words: Record<string, string> = {
    cell_error: trans.__('A cell raised an error'),
    oom_killed: trans.__('Ran out of memory'),
    timeout: trans.__('Hit its time limit'),
    cancelled: trans.__('Cancelled'),
    invalid_input: trans.__('The notebook could not be run'),
    kernel_died: trans.__('The kernel died'),
    lost: trans.__('The run was lost')
  };
  return words[reason] ?? '';
}

/** Why the job ended as it did, in plain words: who cancelled it, the service's summary, its message. */
export function endText(job: IJob, trans: TranslationBundle = AS_WRITTEN): string {
  const parts: string[] = [];
  if (job.status === 'cancelled' && job.cancelled_by) {
    parts.push(trans.__('Cancelled by %1', job.cancelled_by));
  }
  if (job.error) {
    const summary = job.error.summary || reasonWords(job.error.reason, trans);
    // "Cancelled by lena" says it was cancelled: not the reason's words again (the service's English or ours)
    if (!(job.cancelled_by && (job.error.reason === 'cancelled' || /^cancell?ed\b/i.test(summary)))) {
      parts.push(summary);
    }
    const message = job.error.message || '';
    const said = parts[parts.length - 1] ?? '';
    if (said && message.toLowerCase().startsWith(said.toLowerCase())) {
      // "Cancelled by lena" + "cancelled by lena (in code cell 2 of 2)": say it once
      const rest = message.slice(said.length).trim();
      parts[parts.length - 1] = rest ? `${said}${rest.startsWith('(') ? ' ' : ': '}${rest}` : said;
    } else {
      parts.push(message);
    }
  } else if (job.status === 'cancelled' && !job.cancelled_by) {
    parts.push(trans.__('Cancelled'));
  }
  return parts.filter(Boolean).filter((p, i, all) => all.indexOf(p) === i).join(': ').trim();
}

/**
 * Why a failed job failed, in one line. The service's message names the failing cell as a
 * person finds it ("in code cell 2 of 3, In [2]"); `error.cell` is an index into the
 * submitted notebook with markdown cells counted, which reads wrong beside `In [n]`.
 */
export function failureText(job: IJob, trans: TranslationBundle = AS_WRITTEN): string {
  if (!job.error && !job.cancelled_by) {
    return '';
  }
  return endText(job, trans);
}
