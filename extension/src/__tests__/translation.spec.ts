import type { TranslationBundle } from '@jupyterlab/translation';

import { errorFromResponse, networkError } from '../errors';
import { endText, IJob, progressText, secondsText } from '../jobs';
import { basisText, clampNotes, readOverrides, resourcesText, scheduleText } from '../sizing';

/**
 * A catalogue that marks what it translated («…») and keeps the message ids it was asked
 * for: a sentence with a variable part must reach it whole, with its %1, not filled in.
 */
function markingBundle(): { trans: TranslationBundle; asked: string[] } {
  const asked: string[] = [];
  const __ = (msgid: string, ...args: any[]) => {
    asked.push(msgid);
    return '«' + msgid.replace(/%(\d)/g, (_, i) => String(args[Number(i) - 1])) + '»';
  };
  return { trans: { __ } as unknown as TranslationBundle, asked };
}

function job(extra: Partial<IJob>): IJob {
  return {
    id: 'j', name: 'j.ipynb', status: 'failed', parameters: {}, progress: { cells_done: null, cells_total: null },
    resources: {}, error: null, created: null, started: null, finished: null, ...extra
  };
}

describe('the words a user reads go through the app’s translator', () => {
  it('words why a job ended', () => {
    const { trans, asked } = markingBundle();
    const oom = job({ error: { reason: 'oom_killed', message: '', cell: null } });
    expect(endText(oom, trans)).toBe('«Ran out of memory»');
    const cancelled = job({ status: 'cancelled', cancelled_by: 'lena', error: { reason: 'cancelled', message: '', cell: null } });
    // "Cancelled by" says it was cancelled: the reason's own word is not said again
    expect(endText(cancelled, trans)).toBe('«Cancelled by lena»');
    expect(endText(job({ status: 'cancelled' }), trans)).toBe('«Cancelled»');
    expect(asked).toContain('Cancelled by %1');
  });

  it('words the errors of a call', () => {
    const { trans, asked } = markingBundle();
    expect(errorFromResponse(404, '', trans).message).toBe('«not found (is the notebook-jobs server extension enabled?)»');
    expect(errorFromResponse(403, '', trans).message).toBe('«Not allowed: «not allowed»»');
    expect(errorFromResponse(502, '<html>', trans).message).toBe('«the server answered 502»');
    expect(errorFromResponse(418, '', trans).message).toBe('«request failed (418)»');
    // the service's own message is the service's: passed through as it says it
    expect(errorFromResponse(400, JSON.stringify({ error: { message: 'bad alpha' } }), trans).message).toBe('bad alpha');
    expect(networkError(new Error('Failed to fetch'), trans).message).toBe('«Cannot reach the Jupyter server: Failed to fetch»');
    expect(asked).toEqual(expect.arrayContaining(['the server answered %1', 'request failed (%1)', 'Not allowed: %1', 'Cannot reach the Jupyter server: %1']));
  });

  it('words a schedule as one sentence per kind, its time and zone in their places', () => {
    const { trans, asked } = markingBundle();
    const s = { on: true, every: 'weekday' as const, minute: '0', time: '8:30', cron: '' };
    expect(scheduleText(s, 'Europe/Paris', trans)).toBe('«Runs every weekday at 08:30 (Europe/Paris).»');
    expect(scheduleText({ ...s, every: 'day' }, 'UTC', trans)).toBe('«Runs every day at 08:30 (UTC).»');
    expect(scheduleText({ ...s, every: 'hour', minute: '5' }, 'UTC', trans)).toBe('«Runs every hour at minute 5 (UTC).»');
    expect(scheduleText({ ...s, every: 'cron', cron: '0 8 * * 1' }, 'UTC', trans)).toBe('«Runs on the cron "0 8 * * 1" (UTC).»');
    expect(asked).toEqual(['Runs every weekday at %1 (%2).', 'Runs every day at %1 (%2).', 'Runs every hour at minute %1 (%2).', 'Runs on the cron "%1" (%2).']);
  });

  it('words a sizing, its bounds and its durations', () => {
    const { trans } = markingBundle();
    expect(basisText('user-history', trans)).toBe('«your recent runs»');
    expect(basisText(undefined, trans)).toBe('«unknown»');
    expect(resourcesText({ cpu: 1.5, memory: 2 * 1024 ** 3, timeout: 600, gpu: 1 }, trans)).toBe('«1.5 cpu» · 2 GiB · «10 min» · «1 gpu»');
    expect(clampNotes({ cpu: 8 }, { cpu: 2 }, trans)).toEqual({ cpu: "«the admin's bounds allow «2 cpu»: the job gets that»" });
    const over = readOverrides({ cpu: 'x', memory: '', timeout: '600' }, { timeout: [60, 3600] }, trans);
    expect(over.errors).toEqual({ cpu: '«must be a positive number of cores»', timeout: "«must be between «60 s» and «60 min» (the admin's bounds)»" });
    expect(secondsText(185, trans)).toBe('«3 min 5 s»');
    const running = job({ status: 'running', progress: { cells_done: 2, cells_total: 3 }, running_cell: 1 });
    expect(progressText(running, trans)).toBe('«2/3 cells (cell 1)»');
  });
});
