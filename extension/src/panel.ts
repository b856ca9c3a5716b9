/**
 * The results panel: the user's jobs, newest first, with live status and per-cell
 * progress while the panel is shown (events for running jobs, a slower list refresh),
 * and what can be done with each job (the extension's commands, run with the job's id).
 *
 * The list is keyed by job id: a row is built again only when its job (or how its live
 * updates arrive) changed, so an event for one job leaves every other row's node alone.
 */
import type { TranslationBundle } from '@jupyterlab/translation';
import type { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { act, actionButton, runOnJob } from './actions';
import { isolated, shownJSON } from './bidi';
import { LineChart } from './chart';
import { CommandIDs } from './commandIds';
import { h } from './dom';
import { JobsError } from './errors';
import {
  bytesText,
  durationText,
  failureText,
  IJob,
  INITIAL,
  isPartial,
  isTerminal,
  IJobsState,
  JobsAction,
  outputsOf,
  progressText,
  reduce,
  STATUSES
} from './jobs';
import { JobWatch, nextDelay, UpdatesVia } from './live';
import { listJobs, requestAPI } from './request';
import { basisText, resourcesText } from './sizing';

/** What the panel needs: the commands its buttons run, and its words. */
export interface IJobsPanelOptions {
  commands: CommandRegistry;
  trans: TranslationBundle;
}

const PAGE = 20;
const MAX_STREAMS = 6;

/** A job's charts, one per metric: kept across rebuilds of its row, and moved into the new one. */
interface IMetricsView {
  node: HTMLElement;
  charts: Map<string, LineChart>;
  /** Points the event stream brought (the node says how many, for people and tests). */
  streamed: number;
}

/** A report of the notebook's: its step and values by name (the `metric` event, a stored point). */
interface IReport {
  step: number;
  values: Record<string, number>;
}

/** How a row's live updates reached it (kept after its watch ends; shown as data attributes). */
interface ILiveInfo {
  /** `events` while the stream delivers, `polling` once the watch fell back to polling. */
  via: UpdatesVia;
  /** Events received over the stream. */
  streamed: number;
  /** The last job status an event over the stream carried. */
  streamStatus: string | null;
  /** cells_done of the last cell_finished event over the stream. */
  streamCells: number | null;
}

export class JobsPanel extends Widget {
  private state: IJobsState = INITIAL;
  private list: HTMLElement;
  private banner: HTMLElement;
  private more: HTMLButtonElement;
  private watches = new Map<string, JobWatch>();
  private live = new Map<string, ILiveInfo>();
  private metrics = new Map<string, IMetricsView>();
  /** Each job's row: its node, and what it was built from (a changed key builds it again). */
  private rows = new Map<string, { key: string; node: HTMLElement }>();
  private readonly commands: CommandRegistry;
  private readonly trans: TranslationBundle;
  private timer: number | null = null;
  private delay = 3000;
  private clock: number | null = null;

  constructor(options: IJobsPanelOptions) {
    super();
    this.commands = options.commands;
    const trans = (this.trans = options.trans);
    this.id = 'notebook-jobs-panel';
    this.addClass('jp-NotebookJobs-panel');
    this.title.caption = trans.__('Notebook jobs');
    const filter = h(
      'select',
      {
        className: 'jp-NotebookJobs-filter',
        'aria-label': trans.__('Show jobs by status'),
        onchange: (e: Event) => this.setFilter((e.target as HTMLSelectElement).value)
      },
      h('option', { value: '' }, trans.__('All jobs')),
      ...STATUSES.map(s => h('option', { value: s }, trans.__(s)))
    );
    this.banner = h('div', { className: 'jp-NotebookJobs-banner', role: 'status' });
    this.list = h('ul', { className: 'jp-NotebookJobs-list' });
    this.more = h(
      'button',
      { className: 'jp-mod-styled jp-NotebookJobs-more', onclick: () => void this.load(true) },
      trans.__('Show older jobs')
    ) as HTMLButtonElement;
    this.node.append(
      h(
        'div',
        { className: 'jp-NotebookJobs-header' },
        h('h2', {}, trans.__('Notebook jobs')),
        filter,
        h(
          'button',
          { className: 'jp-NotebookJobs-action jp-NotebookJobs-refresh', title: trans.__('Refresh the list'), onclick: () => void this.load(false) },
          trans.__('Refresh')
        )
      ),
      this.banner,
      this.list,
      this.more
    );
  }

  /** The jobs shown now (for tests and commands). */
  get jobs(): IJob[] {
    return this.state.jobs;
  }

  dispatch(action: JobsAction): void {
    if (action.type === 'removed') {
      this.live.delete(action.id);
      this.metrics.delete(action.id);
    }
    this.state = reduce(this.state, action);
    this.render();
    if (this.isVisible) {
      this.follow();
    }
  }

  /** A job submitted from this Lab: show it at once (and say which, for scripts and tests). */
  add(job: IJob): void {
    this.node.dataset.lastSubmitted = job.id;
    this.dispatch({ type: 'job', job });
  }

  private setFilter(filter: string): void {
    this.dispatch({ type: 'filter', filter });
    void this.load(false);
  }

  /** Fetch the first page (or the next one); ``merge`` keeps the older pages shown. */
  async load(append: boolean, merge = false): Promise<void> {
    try {
      const page = await listJobs(this.state.filter, append ? this.state.nextCursor : null, PAGE);
      this.delay = 3000;
      this.dispatch({ type: 'page', jobs: page.jobs, nextCursor: page.next_cursor, append, merge });
    } catch (e) {
      this.dispatch({ type: 'error', message: (e as JobsError).message });
      this.delay = nextDelay(this.delay, 3000, 60000);
    }
  }

  protected onAfterShow(): void {
    void this.load(false);
    this.schedule();
    this.clock = window.setInterval(() => this.tick(), 1000);
  }

  protected onAfterHide(): void {
    // nothing is followed while nobody looks; notifications have their own watches
    for (const w of this.watches.values()) {
      w.stop();
    }
    this.watches.clear();
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.clock !== null) {
      window.clearInterval(this.clock);
      this.clock = null;
    }
  }

  dispose(): void {
    this.onAfterHide();
    super.dispose();
  }

  /** Refresh the list now and then: faster while jobs are active or the service is down. */
  private schedule(): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
    }
    const active = this.state.jobs.some(j => !isTerminal(j.status));
    const wait = this.state.error ? this.delay : active ? Math.max(this.delay, 5000) : 30000;
    this.timer = window.setTimeout(async () => {
      this.timer = null;
      if (!this.isVisible) {
        return;
      }
      await this.load(false, true);
      this.schedule();
    }, wait);
  }

  /** Keep a live event stream on each active job shown (a few at most). */
  private follow(): void {
    const active = this.state.jobs.filter(j => !isTerminal(j.status)).slice(0, MAX_STREAMS);
    const ids = new Set(active.map(j => j.id));
    for (const [id, w] of this.watches) {
      if (!ids.has(id)) {
        w.stop();
        this.watches.delete(id);
      }
    }
    for (const job of active) {
      if (!this.watches.has(job.id)) {
        const info: ILiveInfo = this.live.get(job.id) ?? { via: 'connecting', streamed: 0, streamStatus: null, streamCells: null };
        this.live.set(job.id, info);
        const watch = new JobWatch(
          job.id,
          (event, via) => {
            if (event.event === 'metric') {
              // straight to the job's charts: the row itself does not change (nor is it rebuilt)
              this.addReport(this.metricsView(job.id), event as IReport, true);
              return;
            }
            if (via === 'events') {
              info.streamed++;
              if (event.event === 'status' && event.job) {
                info.streamStatus = String(event.job.status);
              } else if (event.event === 'cell_finished' && event.cells_done != null) {
                info.streamCells = Number(event.cells_done);
              }
            }
            this.dispatch({ type: 'event', id: job.id, event });
          },
          undefined,
          via => {
            // once polled, a row says so even if a later watch of the job gets the stream
            info.via = info.via === 'polling' ? 'polling' : via;
            if (via === 'events' && this.metrics.has(job.id)) {
              void this.loadMetrics(job.id); // what was reported before the stream was up
            }
            this.render();
          }
        );
        this.watches.set(job.id, watch);
        watch.start();
      }
    }
  }

  /** The job's charts, made (and filled from GET …/metrics) the first time they are asked for. */
  private metricsView(id: string): IMetricsView {
    let view = this.metrics.get(id);
    if (!view) {
      const node = h('details', { className: 'jp-NotebookJobs-metrics', open: true, 'data-stream-points': '0' }, h('summary', {}, this.trans.__('Metrics')));
      view = { node, charts: new Map(), streamed: 0 };
      this.metrics.set(id, view);
      const row = this.rows.get(id)?.node;
      row?.insertBefore(node, row.querySelector('.jp-NotebookJobs-actions'));
      void this.loadMetrics(id);
    }
    return view;
  }

  private async loadMetrics(id: string): Promise<void> {
    try {
      const m = await requestAPI<{ series: { name: string; points: { step: number; value: number }[] }[] }>(`jobs/${id}/metrics`);
      const view = this.metricsView(id);
      for (const s of m.series) {
        for (const p of s.points) {
          this.addReport(view, { step: p.step, values: { [s.name]: p.value } }, false);
        }
      }
    } catch {
      // no charts is no error of the panel's: the row says the rest
    }
  }

  /** One report into its charts (a new metric gets a chart); a step seen twice is drawn once. */
  private addReport(view: IMetricsView, report: IReport, streamed: boolean): void {
    for (const [name, value] of Object.entries(report.values)) {
      let chart = view.charts.get(name);
      if (!chart) {
        chart = new LineChart({ title: name, xLabel: this.trans.__('step'), yLabel: name, color: view.charts.size });
        chart.node.dataset.metric = name;
        view.charts.set(name, chart);
        view.node.append(chart.node);
      }
      chart.append(name, { x: report.step, y: value });
    }
    if (streamed) {
      view.node.dataset.streamPoints = String((view.streamed += Object.keys(report.values).length));
    }
  }

  private tick(): void {
    // running durations count up without a server round trip
    for (const el of Array.from(this.list.querySelectorAll<HTMLElement>('[data-running-since]'))) {
      el.textContent = durationText(el.dataset.runningSince!, null, this.trans);
    }
  }

  private render(): void {
    this.banner.textContent = this.state.error ?? '';
    this.banner.classList.toggle('jp-mod-error', Boolean(this.state.error));
    this.more.style.display = this.state.nextCursor ? '' : 'none';
    const jobs = this.state.jobs;
    if (!jobs.length) {
      this.rows.clear();
      this.list.replaceChildren(
        h('li', { className: 'jp-NotebookJobs-empty' }, this.state.error ? '' : this.trans.__('No jobs yet. Use "Submit as job" on a notebook.'))
      );
      return;
    }
    const shown = new Set(jobs.map(j => j.id));
    for (const [id, row] of this.rows) {
      if (!shown.has(id)) {
        row.node.remove();
        this.rows.delete(id);
      }
    }
    this.list.querySelector(':scope > .jp-NotebookJobs-empty')?.remove();
    jobs.forEach((job, i) => {
      // a list refresh brings new objects of unchanged jobs: what they hold decides
      const key = JSON.stringify([job, this.live.get(job.id) ?? null]);
      let row = this.rows.get(job.id);
      if (!row || row.key !== key) {
        const node = this.row(job);
        row?.node.replaceWith(node);
        row = { key, node };
        this.rows.set(job.id, row);
      }
      const here = this.list.children[i] ?? null;
      if (here !== row.node) {
        this.list.insertBefore(row.node, here);
      }
    });
  }

  /** Run one of the extension's commands on a job; what goes wrong stays in front of the user until dismissed. */
  private run<T>(command: string, job: IJob, then?: (result: T) => void): void {
    void runOnJob(this.commands, command, job, then);
  }

  private row(job: IJob): HTMLElement {
    const terminal = isTerminal(job.status);
    const done = job.progress?.cells_done ?? 0;
    const total = job.progress?.cells_total ?? 0;
    const trans = this.trans;
    const used = job.resources.used ?? {};
    const usedParts = [
      (used as any).peak_memory != null ? trans.__('peak %1', bytesText(Number((used as any).peak_memory))) : '',
      (used as any).cpu_seconds != null ? trans.__('%1 cpu·s', Number((used as any).cpu_seconds).toFixed(1)) : ''
    ].filter(Boolean);
    // the resource line wraps between its items, never inside one
    const item = (text: string) => h('span', { className: 'jp-NotebookJobs-item' }, text);
    const alloc = job.resources.allocated;
    const resourceItems = [
      ...resourcesText(alloc, trans).split(' · ').filter(Boolean).map((t, i, all) => item(i < all.length - 1 ? `${t} ·` : t)),
      alloc?.basis ? item(`(${alloc.basis})`) : null,
      usedParts.length ? item(trans.__('— used')) : null,
      ...usedParts.map((t, i) => item(i < usedParts.length - 1 ? `${t},` : t))
    ].filter((n): n is HTMLElement => n !== null);
    // what the service says it keeps of the job (see outputsOf for an older service)
    const outputs = outputsOf(job);
    const partial = outputs.length > 0 && isPartial(job);
    const formats = job.output_formats ?? ['ipynb', 'html'];
    const outputTitle = partial ? trans.__('the notebook as far as it ran (the run did not finish)') : null;
    // how live updates reached the row (for people debugging a proxy, and for the tests)
    const live = this.live.get(job.id);
    const liveAttrs: Record<string, string> = live
      ? {
          'data-updates': live.via,
          'data-stream-events': String(live.streamed),
          ...(live.streamStatus ? { 'data-stream-status': live.streamStatus } : {}),
          ...(live.streamCells != null ? { 'data-stream-cells': String(live.streamCells) } : {})
        }
      : {};
    return h(
      'li',
      { className: `jp-NotebookJobs-job jp-mod-${job.status}`, 'data-job-id': job.id, 'data-status': job.status, ...liveAttrs },
      h(
        'div',
        { className: 'jp-NotebookJobs-jobHead' },
        h('span', { className: 'jp-NotebookJobs-name', title: job.id }, job.name),
        h('span', { className: `jp-NotebookJobs-status jp-mod-${job.status}` }, trans.__(job.status))
      ),
      total
        ? h('progress', { className: 'jp-NotebookJobs-progress', max: String(total), value: String(done) })
        : null,
      h(
        'div',
        { className: 'jp-NotebookJobs-meta' },
        h('span', { className: 'jp-NotebookJobs-cells' }, progressText(job, trans)),
        job.started
          ? h('span', terminal ? { className: 'jp-NotebookJobs-duration' } : { className: 'jp-NotebookJobs-duration', 'data-running-since': job.started }, durationText(job.started, job.finished, trans))
          : h('span', { className: 'jp-NotebookJobs-duration' }, job.created ? trans.__('queued %1', new Date(job.created).toLocaleTimeString()) : '')
      ),
      h(
        'div',
        { className: 'jp-NotebookJobs-resources', title: trans.__('sized by %1', basisText(String(alloc?.basis ?? ''), trans)) },
        ...resourceItems
      ),
      Object.keys(job.parameters ?? {}).length
        ? h('div', { className: 'jp-NotebookJobs-params' }, Object.entries(job.parameters).map(([k, v]) => `${k}=${isolated(shownJSON(v))}`).join(', '))
        : null,
      job.error || job.cancelled_by ? h('div', { className: 'jp-NotebookJobs-error' }, failureText(job, trans)) : null,
      // what the notebook reported: charts, live while it runs
      Object.keys((job as IJob & { metrics?: Record<string, number> }).metrics ?? {}).length || this.metrics.has(job.id)
        ? this.metricsView(job.id).node
        : null,
      partial
        ? h('div', { className: 'jp-NotebookJobs-partial', title: outputTitle }, trans.__('Partial output: the notebook as far as it ran'))
        : null,
      h(
        'div',
        { className: 'jp-NotebookJobs-actions' },
        actionButton(trans.__('Open'), 'open', () => this.run(CommandIDs.openOutput, job), outputs.includes('ipynb'), outputTitle),
        job.sweep_id
          ? actionButton(trans.__('Open sweep'), 'sweep', () => void act(() => this.commands.execute(CommandIDs.openSweep, { id: job.sweep_id! })),
              true, trans.__('This job is a run of a sweep: see all its runs side by side'))
          : null,
        formats.includes('html') || outputs.includes('html')
          ? actionButton(trans.__('HTML'), 'html', () => this.run(CommandIDs.showHtml, job), outputs.includes('html'), outputTitle)
          : null,
        actionButton(trans.__('Log'), 'log', () => this.run(CommandIDs.showLog, job)),
        actionButton(trans.__('Download'), 'download', () => this.run(CommandIDs.download, job), outputs.includes('ipynb'), outputTitle),
        terminal
          ? actionButton(trans.__('Rerun…'), 'rerun', () => this.run<IJob | null>(CommandIDs.rerun, job, next => next && this.add(next)))
          : actionButton(trans.__('Cancel'), 'cancel', () => this.run<IJob>(CommandIDs.cancel, job, ended => this.dispatch({ type: 'job', job: ended }))),
        terminal
          ? actionButton(trans.__('Delete'), 'delete', () =>
              this.run<boolean>(CommandIDs.remove, job, gone => gone && this.dispatch({ type: 'removed', id: job.id }))
            )
          : null
      )
    );
  }
}
