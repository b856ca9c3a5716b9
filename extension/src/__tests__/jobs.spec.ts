import { bytesText, durationText, failureText, IJob, INITIAL, isPartial, outputsOf, progressText, reduce } from '../jobs';

function job(id: string, status: IJob['status'], extra: Partial<IJob> = {}): IJob {
  return {
    id, name: `${id}.ipynb`, status, parameters: {}, progress: { cells_done: null, cells_total: null },
    resources: {}, error: null, created: '2026-01-01T00:00:00Z', started: null, finished: null, ...extra
  };
}

describe('reduce', () => {
  it('replaces the list with a first page and appends later pages without duplicates', () => {
    let s = reduce(INITIAL, { type: 'page', jobs: [job('b', 'queued'), job('a', 'succeeded')], nextCursor: 'c1', append: false });
    expect(s.jobs.map(j => j.id)).toEqual(['b', 'a']);
    expect(s.nextCursor).toBe('c1');
    s = reduce(s, { type: 'page', jobs: [job('a', 'succeeded'), job('z', 'failed')], nextCursor: null, append: true });
    expect(s.jobs.map(j => j.id)).toEqual(['b', 'a', 'z']);
    expect(s.nextCursor).toBeNull();
  });

  it('keeps the older pages shown when the first page is refreshed', () => {
    let s = reduce(INITIAL, { type: 'page', jobs: [job('c', 'running'), job('b', 'failed')], nextCursor: 'p2', append: false });
    s = reduce(s, { type: 'page', jobs: [job('a', 'succeeded')], nextCursor: null, append: true });
    s = reduce(s, { type: 'page', jobs: [job('d', 'queued'), job('c', 'succeeded')], nextCursor: 'p2b', append: false, merge: true });
    expect(s.jobs.map(j => `${j.id}:${j.status}`)).toEqual(['d:queued', 'c:succeeded', 'b:failed', 'a:succeeded']);
    expect(s.nextCursor).toBeNull(); // the user had reached the last page
    s = reduce(s, { type: 'page', jobs: [job('d', 'queued')], nextCursor: 'x', append: false });
    expect(s.jobs.map(j => j.id)).toEqual(['d']); // a plain reload (filter change, Refresh) starts over
  });

  it('puts a newly submitted job first, and updates a known one in place', () => {
    let s = reduce(INITIAL, { type: 'page', jobs: [job('a', 'succeeded')], nextCursor: null, append: false });
    s = reduce(s, { type: 'job', job: job('n', 'queued') });
    expect(s.jobs.map(j => j.id)).toEqual(['n', 'a']);
    s = reduce(s, { type: 'job', job: job('n', 'running') });
    expect(s.jobs.map(j => `${j.id}:${j.status}`)).toEqual(['n:running', 'a:succeeded']);
  });

  it('follows live events: started, cell progress, the cell running, the end', () => {
    let s = reduce(INITIAL, { type: 'job', job: job('n', 'running') });
    s = reduce(s, { type: 'event', id: 'n', event: { event: 'started', cells_total: 3 } });
    s = reduce(s, { type: 'event', id: 'n', event: { event: 'cell_started', cell: 1 } });
    s = reduce(s, { type: 'event', id: 'n', event: { event: 'cell_finished', cell: 1, cells_done: 2 } });
    expect(s.jobs[0].progress).toEqual({ cells_done: 2, cells_total: 3 });
    expect(progressText(s.jobs[0])).toBe('2/3 cells (cell 1)');
    s = reduce(s, { type: 'event', id: 'n', event: { event: 'log', text: 'hi' } });
    s = reduce(s, { type: 'event', id: 'n', event: { event: 'status', job: job('n', 'succeeded', { progress: { cells_done: 3, cells_total: 3 } }) } });
    expect(s.jobs[0].status).toBe('succeeded');
    expect(progressText(s.jobs[0])).toBe('3/3 cells');
  });

  it('does not let a stale list page roll an ended job back to running', () => {
    let s = reduce(INITIAL, { type: 'job', job: job('n', 'succeeded') });
    s = reduce(s, { type: 'page', jobs: [job('n', 'running')], nextCursor: null, append: false });
    expect(s.jobs[0].status).toBe('succeeded');
    s = reduce(s, { type: 'job', job: job('n', 'running') });
    expect(s.jobs[0].status).toBe('succeeded');
  });

  it('filters by status, drops deleted jobs and keeps a panel-wide error until the next page', () => {
    let s = reduce(INITIAL, { type: 'page', jobs: [job('a', 'failed'), job('b', 'succeeded')], nextCursor: null, append: false });
    s = reduce(s, { type: 'filter', filter: 'failed' });
    expect(s.jobs.map(j => j.id)).toEqual(['a']);
    s = reduce(s, { type: 'job', job: job('c', 'queued') });
    expect(s.jobs.map(j => j.id)).toEqual(['a']); // not a failed job: not shown under this filter
    s = reduce(s, { type: 'removed', id: 'a' });
    expect(s.jobs).toEqual([]);
    s = reduce(s, { type: 'error', message: 'down' });
    expect(s.error).toBe('down');
    s = reduce(s, { type: 'page', jobs: [], nextCursor: null, append: false });
    expect(s.error).toBeNull();
  });
});

describe('row texts', () => {
  it('says why a job failed in the words of the service, not the raw cell index', () => {
    const message = 'ZeroDivisionError: division by zero (in code cell 2 of 3, In [2])';
    const j = job('f', 'failed', { error: { reason: 'cell_error', message, cell: 3 } });
    expect(failureText(j)).toBe(`A cell raised an error: ${message}`);
    const oom = job('o', 'failed', { error: { reason: 'oom_killed', message: 'killed at 1 GiB', cell: null, summary: 'Ran out of memory' } });
    expect(failureText(oom)).toBe('Ran out of memory: killed at 1 GiB');
    expect(failureText(oom)).not.toMatch(/oom_killed/);
  });
  it('says who cancelled a job', () => {
    const c = job('c', 'cancelled', { cancelled_by: 'admin', error: { reason: 'cancelled', message: 'cancelled', cell: null, summary: 'Cancelled by admin' } });
    expect(failureText(c)).toBe('Cancelled by admin: cancelled');
    const said = job('e', 'cancelled', { cancelled_by: 'lena', error: { reason: 'cancelled', message: 'cancelled by lena (in code cell 2 of 2)', cell: null, summary: 'Cancelled by lena' } });
    expect(failureText(said)).toBe('Cancelled by lena (in code cell 2 of 2)');
    expect(failureText(job('d', 'cancelled', { cancelled_by: 'lena', error: null }))).toBe('Cancelled by lena');
  });
  it("reads the service's has_output/outputs/partial, and guesses nothing", () => {
    const partial = job('p', 'cancelled', { has_output: true, outputs: ['ipynb', 'html'], partial: true, error: { reason: 'cancelled', message: '', cell: null } });
    expect(outputsOf(partial)).toEqual(['ipynb', 'html']);
    expect(isPartial(partial)).toBe(true);
    expect(outputsOf(job('n', 'succeeded', { has_output: false, outputs: [] }))).toEqual([]);
    expect(outputsOf(job('o', 'succeeded', { has_output: true }))).toEqual(['ipynb']);
    // a job that does not say has no output, whatever its status or formats
    expect(outputsOf(job('y', 'succeeded', { output_formats: ['ipynb', 'md'] }))).toEqual([]);
    expect(isPartial(job('y', 'failed', { partial: true, has_output: false }))).toBe(false);
  });
  it('says sizes in binary units', () => {
    expect(bytesText(256 * 1024 ** 2)).toBe('256 MiB');
    expect(bytesText(1.5 * 1024 ** 3)).toBe('1.5 GiB');
  });
  it('shows durations in seconds, minutes, hours', () => {
    expect(durationText('2026-01-01T00:00:00Z', '2026-01-01T00:00:04.25Z')).toBe('4.3 s');
    expect(durationText('2026-01-01T00:00:00Z', '2026-01-01T00:03:05Z')).toBe('3 min 5 s');
    expect(durationText('2026-01-01T00:00:00Z', '2026-01-01T02:10:00Z')).toBe('2 h 10 min');
  });
});
