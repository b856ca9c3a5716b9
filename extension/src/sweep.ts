/**
 * A sweep's view in Lab's main area, the twin of the service's sweep page: a row per run (its
 * parameters, status, duration, memory used and final metrics) sortable by any column, the
 * best run marked for the metric and direction picked, every run's series of that metric in
 * one chart, Cancel sweep / Rerun failed / Delete sweep (asked first; the view closes once it is
 * gone), and each run's own actions (Open its output, Cancel
 * it while it is live, Rerun it once it ended: the commands a job's row in the panel runs). It
 * reads the sweep again every 2 s while a run is still to end, and stops when all have or the
 * view is closed; Lab's layout restorer opens it again on a reload. Built with textContent
 * only: parameters and metric names are the user's.
 */
import { Dialog, MainAreaWidget, showDialog } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';
import type { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { actionButton, runOnJob } from './actions';
import { isolated, parameterLine } from './bidi';
import { formatValue, IPoint, LineChart } from './chart';
import { CommandIDs } from './commandIds';
import { h } from './dom';
import type { JobsError } from './errors';
import { bytesText, IResources, isTerminal, JobStatus, secondsText } from './jobs';
import { ownValue } from './params';
import { cancelSweep, deleteSweep, getSweep, metricSeries, rerunFailed } from './request';
import { tab } from './views';

/** One run of a sweep, as `GET /sweeps/{id}` rows it. */
export interface ISweepRun {
  job_id: string;
  parameters: Record<string, unknown>;
  status: JobStatus;
  /** Seconds it ran (so far), or null before it started. */
  duration: number | null;
  used: IResources;
  /** The final value of each metric it reported. */
  metrics: Record<string, number>;
  error: { message: string; summary?: string } | null;
}

/** A sweep, as the service answers it. */
export interface ISweep {
  id: string;
  name: string;
  status: JobStatus;
  size: number;
  counts: Record<string, number>;
  /** The names of the metrics its runs reported. */
  metrics: string[];
  /** In the grid's order (the last name varies fastest). */
  runs: ISweepRun[];
  /** With `?metric=`: the succeeded run with the least (`min`) or greatest (`max`) final value. */
  best?: { metric: string; mode: string; job_id: string | null; value: number | null };
}

const POLL_MS = 2000;

/** A column of the runs' table: a run's value in it (`i`: its place in the grid), and how it is shown. */
interface IColumn {
  key: string;
  title: string;
  value: (run: ISweepRun, i: number) => unknown;
  text: (value: any) => string;
}

/** Order two values of a column: numbers as numbers, the rest as text (with its numbers), a missing one last. */
export function compareValues(a: unknown, b: unknown, dir: 1 | -1): number {
  const none = (v: unknown) => (v === undefined || v === null ? 1 : 0);
  if (none(a) || none(b)) {
    return none(a) - none(b);
  }
  if (typeof a === 'number' && typeof b === 'number') {
    return (a - b) * dir;
  }
  return String(a).localeCompare(String(b), undefined, { numeric: true }) * dir;
}

/** A parameter's value as a cell shows it: text as it is, anything else as JSON. */
function valueText(v: unknown): string {
  return v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
}

/** How long a run's name may be (as on the service's sweep page): a value may be 64 KiB. */
const LABEL_LIMIT = 60;

/** A run's name in the chart's legend: its parameters (`lr=0.1, depth=2`, cut at LABEL_LIMIT, each value isolated), else its place. */
export function runLabel(run: ISweepRun, i: number): string {
  return parameterLine(run.parameters ?? {}, LABEL_LIMIT) || `#${i + 1}`;
}

export class SweepView extends Widget {
  private sweep: ISweep | null = null;
  private sort: { key: string; dir: 1 | -1 } = { key: 'order', dir: 1 };
  private timer: number | null = null;
  private serial = 0;
  /** Each ended run's series of a metric ("job id/metric"): read once. */
  private series = new Map<string, IPoint[]>();
  /** Whether a metric was picked for the user (the first reported): only once, so "(no metric)" stays theirs. */
  private picked = false;
  private chart: LineChart | null = null;
  private readonly status: HTMLElement;
  private readonly counts: HTMLElement;
  private readonly message: HTMLElement;
  private readonly metric: HTMLSelectElement;
  private readonly mode: HTMLSelectElement;
  private readonly best: HTMLElement;
  private readonly cancel: HTMLButtonElement;
  private readonly rerun: HTMLButtonElement;
  private readonly remove: HTMLButtonElement;
  private readonly table: HTMLTableElement;
  private readonly chartBox: HTMLElement;

  constructor(
    readonly sweepId: string,
    private readonly commands: CommandRegistry,
    private readonly trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-NotebookJobs-sweep');
    this.node.dataset.sweepId = sweepId;
    this.title.label = trans.__('Sweep %1', sweepId.slice(0, 8));
    this.status = h('span', { className: 'jp-NotebookJobs-status' });
    this.counts = h('span', { className: 'jp-NotebookJobs-sweepCounts' });
    this.message = h('div', { className: 'jp-NotebookJobs-formError', role: 'alert' });
    this.metric = h('select', { className: 'jp-NotebookJobs-sweepMetric', 'aria-label': trans.__('Metric'), onchange: () => this.chosen() }) as HTMLSelectElement;
    this.mode = h(
      'select',
      { className: 'jp-NotebookJobs-sweepMode', 'aria-label': trans.__('Best is'), onchange: () => this.chosen() },
      h('option', { value: 'min' }, trans.__('lowest is best')),
      h('option', { value: 'max' }, trans.__('highest is best'))
    ) as HTMLSelectElement;
    this.best = h('div', { className: 'jp-NotebookJobs-sweepBest' });
    const action = (label: string, name: string, fn: () => Promise<unknown>) =>
      h('button', { className: 'jp-NotebookJobs-action', 'data-action': name, disabled: true, onclick: (e: Event) => void this.act(e.target as HTMLButtonElement, fn) }, label) as HTMLButtonElement;
    this.cancel = action(trans.__('Cancel sweep'), 'cancel-sweep', () => cancelSweep(sweepId));
    this.rerun = action(trans.__('Rerun failed'), 'rerun-failed', () => rerunFailed(sweepId));
    this.remove = h('button', { className: 'jp-NotebookJobs-action', 'data-action': 'delete-sweep', disabled: true, onclick: () => void this.delete() }, trans.__('Delete sweep')) as HTMLButtonElement;
    this.table = h('table', { className: 'jp-NotebookJobs-sweepTable' }, h('thead', {}, h('tr')), h('tbody')) as HTMLTableElement;
    this.table.tHead!.addEventListener('click', e => this.sortBy(e));
    this.chartBox = h('div', { className: 'jp-NotebookJobs-sweepChart', hidden: true });
    this.node.append(
      h('div', { className: 'jp-NotebookJobs-sweepHead' }, this.status, this.counts),
      h(
        'div',
        { className: 'jp-NotebookJobs-sweepControls' },
        h('label', {}, trans.__('Metric'), ' ', this.metric),
        this.mode,
        this.cancel,
        this.rerun,
        this.remove
      ),
      this.message,
      this.best,
      h('div', { className: 'jp-NotebookJobs-sweepRuns' }, this.table),
      this.chartBox
    );
    void this.load();
  }

  dispose(): void {
    this.stop();
    super.dispose();
  }

  private stop(): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /** Read the sweep (with the best run of the metric picked), show it, and again in 2 s while a run is to end. */
  private async load(): Promise<void> {
    this.stop();
    const serial = ++this.serial;
    try {
      const sweep = await getSweep(this.sweepId, this.metric.value, this.mode.value);
      if (serial !== this.serial || this.isDisposed) {
        return; // an older answer, or closed meanwhile
      }
      this.sweep = sweep;
      if (!this.picked && !this.metric.value && sweep.metrics.length) {
        // the first metric reported, chosen for the user: its best run and chart
        this.picked = true;
        this.showSweep();
        this.metric.value = sweep.metrics[0];
        return this.load();
      }
      this.message.textContent = '';
      this.showSweep();
      await this.showChart();
    } catch (e) {
      const err = e as JobsError;
      if (serial !== this.serial || this.isDisposed) {
        return;
      }
      this.message.textContent = err.message;
      if (err.status >= 400 && err.status < 500) {
        return; // (no such sweep, or not the user's: asking again will not change that)
      }
    }
    if (serial === this.serial && !this.isDisposed && (!this.sweep || this.active() > 0)) {
      this.timer = window.setTimeout(() => void this.load(), POLL_MS);
    }
  }

  /** How many runs are still to end. */
  private active(): number {
    return this.sweep!.runs.filter(r => !isTerminal(r.status)).length;
  }

  private chosen(): void {
    this.picked = true;
    void this.load();
  }

  private columns(): IColumn[] {
    const { trans } = this;
    const sweep = this.sweep!;
    const names = [...new Set(sweep.runs.flatMap(run => Object.keys(run.parameters ?? {})))];
    const number = (v: unknown) => (typeof v === 'number' ? formatValue(v) : '');
    return [
      { key: 'order', title: '#', value: (_, i) => i, text: (i: number) => String(i + 1) },
      ...names.map(name => ({ key: `param:${name}`, title: name, value: (run: ISweepRun) => ownValue(run.parameters, name), text: valueText })),
      { key: 'status', title: trans.__('Status'), value: run => run.status, text: String },
      { key: 'duration', title: trans.__('Duration'), value: run => run.duration, text: (v: number | null) => (v == null ? '' : secondsText(v, trans)) },
      { key: 'memory', title: trans.__('Memory used'), value: run => run.used?.peak_memory, text: (v: number | undefined) => bytesText(v) },
      ...sweep.metrics.map(m => ({ key: `metric:${m}`, title: m, value: (run: ISweepRun) => ownValue(run.metrics, m), text: number }))
    ];
  }

  private sortBy(e: Event): void {
    const th = (e.target as HTMLElement).closest<HTMLElement>('th[data-key]');
    if (!th || !this.sweep) {
      return;
    }
    const key = th.dataset.key!;
    this.sort = { key, dir: this.sort.key === key ? (-this.sort.dir as 1 | -1) : 1 };
    this.showTable();
  }

  private showSweep(): void {
    const { trans } = this;
    const sweep = this.sweep!;
    this.title.label = trans.__('Sweep: %1', isolated(sweep.name));
    this.node.dataset.status = sweep.status;
    this.status.className = `jp-NotebookJobs-status jp-mod-${sweep.status}`;
    this.status.textContent = trans.__(sweep.status);
    const counts = Object.entries(sweep.counts)
      .filter(([, n]) => n)
      .map(([s, n]) => `${n} ${trans.__(s)}`)
      .join(', ');
    this.counts.textContent = trans._n('%1 run', '%1 runs', sweep.runs.length) + (counts ? ` (${counts})` : '');
    const names = JSON.stringify(sweep.metrics);
    if (this.metric.dataset.names !== names) {
      // (only when they change: an open list is not closed under the user's pointer)
      const chosen = this.metric.value;
      this.metric.dataset.names = names;
      this.metric.replaceChildren(
        h('option', { value: '' }, trans.__('(no metric)')),
        ...sweep.metrics.map(m => h('option', { value: m }, m))
      );
      this.metric.value = sweep.metrics.includes(chosen) ? chosen : '';
    }
    const best = sweep.best;
    const at = best ? sweep.runs.findIndex(r => r.job_id === best.job_id) : -1;
    this.best.textContent = !best
      ? ''
      : at < 0
        ? trans.__('No succeeded run reported %1 yet.', best.metric)
        : trans.__('Best run: #%1, %2 (%3 %4)', at + 1, runLabel(sweep.runs[at], at), best.metric, formatValue(Number(best.value)));
    this.cancel.disabled = !this.active();
    this.rerun.disabled = !sweep.counts.failed;
    this.remove.disabled = false;
    this.showTable();
  }

  private showTable(): void {
    const sweep = this.sweep!;
    const cols = this.columns();
    const col = cols.find(c => c.key === this.sort.key) ?? cols[0];
    const order = sweep.runs.map((run, i) => ({ run, i }));
    order.sort((a, b) => compareValues(col.value(a.run, a.i), col.value(b.run, b.i), this.sort.dir) || a.i - b.i);
    const head = this.table.tHead!.rows[0];
    head.replaceChildren(
      h('th', { 'aria-label': this.trans.__('best run') }),
      ...cols.map(c =>
        h(
          'th',
          { 'data-key': c.key, 'aria-sort': c.key === this.sort.key ? (this.sort.dir > 0 ? 'ascending' : 'descending') : null },
          h('button', { type: 'button', className: 'jp-NotebookJobs-sort', title: this.trans.__('Sort by %1', c.title) }, c.title)
        )
      ),
      h('th', { 'aria-label': this.trans.__('actions') })
    );
    const bestId = sweep.best?.job_id;
    this.table.tBodies[0].replaceChildren(
      ...order.map(({ run, i }) => {
        const isBest = run.job_id === bestId;
        return h(
          'tr',
          { className: isBest ? 'jp-mod-best' : null, 'data-job-id': run.job_id, 'data-status': run.status, title: run.error?.summary ?? run.error?.message ?? null },
          h('td', { className: 'jp-NotebookJobs-bestMark', title: isBest ? this.trans.__('the best run') : null }, isBest ? '★' : ''),
          ...cols.map(c => {
            const value = c.value(run, i);
            const cell = h('td', { 'data-key': c.key });
            if (c.key === 'status') {
              cell.append(h('span', { className: `jp-NotebookJobs-status jp-mod-${run.status}` }, this.trans.__(run.status)));
            } else {
              cell.textContent = c.text(value);
            }
            return cell;
          }),
          h('td', { className: 'jp-NotebookJobs-runActions' }, ...this.runActions(run, i))
        );
      })
    );
  }

  /**
   * A run's own buttons, as its job's row in the panel has them (the same commands): Open its
   * output once it ended, Cancel while it is live, Rerun… once it ended; the sweep is read again after.
   */
  private runActions(run: ISweepRun, i: number): HTMLButtonElement[] {
    const { trans } = this;
    const job = { id: run.job_id, name: `${isolated(this.sweep!.name)} (${runLabel(run, i)})` };
    const command = (id: string, then?: () => void) => () => void runOnJob(this.commands, id, job, then);
    const reload = () => void this.load();
    if (!isTerminal(run.status)) {
      return [actionButton(trans.__('Cancel'), 'cancel', command(CommandIDs.cancel, reload), true, trans.__('Cancel this run'))];
    }
    return [
      actionButton(trans.__('Open'), 'open', command(CommandIDs.openOutput), true,
        run.status === 'succeeded' ? trans.__('Open the executed notebook') : trans.__('Open the notebook as far as it ran')),
      actionButton(trans.__('Rerun…'), 'rerun', command(CommandIDs.rerun, reload), true, trans.__('Run this run again, in its place in the sweep'))
    ];
  }

  /** The chosen metric's series of each run (an ended run's read once), drawn over each other. */
  private async showChart(): Promise<void> {
    const sweep = this.sweep!;
    const metric = this.metric.value;
    if (!metric) {
      this.chartBox.hidden = true;
      return;
    }
    const all = await Promise.all(
      sweep.runs.map(async run => {
        const key = `${run.job_id}/${metric}`;
        const kept = this.series.get(key);
        if (kept) {
          return kept;
        }
        const points = await metricSeries(run.job_id, metric).catch(() => [] as IPoint[]);
        if (isTerminal(run.status)) {
          this.series.set(key, points);
        }
        return points;
      })
    );
    if (metric !== this.metric.value || this.isDisposed) {
      return; // another metric was chosen meanwhile
    }
    const lines = sweep.runs.map((run, i) => ({ name: runLabel(run, i), points: all[i] })).filter(s => s.points.length);
    if (this.chartBox.dataset.metric !== metric || !this.chart) {
      this.chart = new LineChart({ title: this.trans.__('%1 of each run', metric), xLabel: this.trans.__('step'), yLabel: metric });
      this.chartBox.replaceChildren(this.chart.node);
      this.chartBox.dataset.metric = metric;
    }
    this.chartBox.hidden = !lines.length;
    this.chart.update(lines);
    this.chartBox.dataset.lines = String(lines.length);
  }

  /**
   * Delete the sweep with its runs, once the user said so; then the view closes. A refusal (a run
   * still stopping after its cancel: 409) stays in the view, in the service's words.
   */
  private async delete(): Promise<void> {
    const { trans } = this;
    const sweep = this.sweep!;
    const answer = await showDialog({
      title: trans.__('Delete sweep'),
      body: trans._n(
        'Delete "%2" with its %1 run and its outputs? A run still going is cancelled first. This cannot be undone.',
        'Delete "%2" with its %1 runs and their outputs? Runs still going are cancelled first. This cannot be undone.',
        sweep.runs.length,
        isolated(sweep.name)
      ),
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: trans.__('Delete') })]
    });
    if (!answer.button.accept || this.isDisposed) {
      return;
    }
    this.remove.disabled = true;
    this.message.textContent = '';
    try {
      await deleteSweep(this.sweepId);
    } catch (e) {
      this.message.textContent = (e as Error).message;
      this.remove.disabled = false;
      return;
    }
    this.stop();
    (this.parent ?? this).close(); // (its tab, when in one)
  }

  /** A button's action on the sweep; the sweep is read again after it. */
  private async act(button: HTMLButtonElement, fn: () => Promise<unknown>): Promise<void> {
    button.disabled = true;
    this.message.textContent = '';
    try {
      await fn();
    } catch (e) {
      this.message.textContent = (e as Error).message;
    }
    await this.load();
  }
}

/** A sweep's view in a main-area tab. */
export function sweepView(id: string, commands: CommandRegistry, trans: TranslationBundle): MainAreaWidget<SweepView> {
  const view = new SweepView(id, commands, trans);
  return tab(view, `notebook-jobs-sweep-${id}`, view.title.label);
}
