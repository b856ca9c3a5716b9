/**
 * What the service proposes for a job (its dry run's `resources`), in words, and the
 * user's overrides read back into the service's request fields, within the admin's bounds.
 */
import type { TranslationBundle } from '@jupyterlab/translation';

import { bytesText, IJob, IResources } from './jobs';
import { AS_WRITTEN } from './translation';

const GB = 1024 ** 3;

export type Bounds = Partial<Record<'cpu' | 'memory' | 'timeout', [number, number]>>;

/** The basis of a sizing in words (a basis this version does not know, as the service says it). */
export function basisText(basis: string | undefined, trans: TranslationBundle = AS_WRITTEN): string {
  const words: Record<string, string> = {
    'cold-start': trans.__("the admin's defaults (no history yet)"),
    default: trans.__("the admin's defaults"),
    'user-history': trans.__('your recent runs'),
    model: trans.__('the demand model'),
    request: trans.__('your request')
  };
  return basis ? (words[basis] ?? basis) : trans.__('unknown');
}

/** "1.5 cpu" */
function cpuText(cpu: number, trans: TranslationBundle): string {
  return trans.__('%1 cpu', +cpu.toFixed(2));
}

/** "1.5 cpu · 2 GiB · 10 min" for an allocation. */
export function resourcesText(r: IResources | undefined, trans: TranslationBundle = AS_WRITTEN): string {
  if (!r) {
    return '';
  }
  const parts: string[] = [];
  if (r.cpu != null) {
    parts.push(cpuText(Number(r.cpu), trans));
  }
  if (r.memory != null) {
    parts.push(bytesText(Number(r.memory)));
  }
  if (r.timeout != null) {
    parts.push(timeText(Number(r.timeout), trans));
  }
  if (r.gpu) {
    parts.push(trans.__('%1 gpu', r.gpu));
  }
  return parts.join(' · ');
}

/** Seconds as "45 s" / "10 min" / "2 h" / "2 h 30 min". */
export function timeText(seconds: number, trans: TranslationBundle = AS_WRITTEN): string {
  if (seconds < 120) {
    return trans.__('%1 s', Math.round(seconds));
  }
  const m = Math.round(seconds / 60);
  if (m < 120) {
    return trans.__('%1 min', m);
  }
  return m % 60 ? trans.__('%1 h %2 min', Math.floor(m / 60), m % 60) : trans.__('%1 h', m / 60);
}

/** The admin's bounds, where the dry run tells them. */
export function boundsOf(job: IJob | null): Bounds {
  const b = (job?.resources as any)?.bounds ?? (job as any)?.bounds ?? {};
  const out: Bounds = {};
  for (const key of ['cpu', 'memory', 'timeout'] as const) {
    const v = b[key];
    if (Array.isArray(v) && v.length === 2) {
      out[key] = [Number(v[0]), Number(v[1])];
    } else if (v && typeof v === 'object' && 'min' in v && 'max' in v) {
      out[key] = [Number(v.min), Number(v.max)];
    }
  }
  return out;
}

export interface IOverrideInputs {
  /** Cores, e.g. "1.5" ('' keeps the proposal). */
  cpu: string;
  /** A number of GiB ("2", "0.5"), or a size as the API takes it ("512MB", "2g", "1.5GiB", bytes). */
  memory: string;
  /** Minutes. */
  timeout: string;
}

/**
 * The request fields for the user's overrides: `resources` {cpu, memory} and `timeout`
 * seconds; `errors` names a field whose input is not a number or is out of bounds.
 * Memory goes as typed ("512MB", "2g", bytes: the service reads the sizes its API takes, and
 * its answer judges them); a bare number is GiB, the field's unit, and is sent as "<n>GiB".
 */
export function readOverrides(
  inputs: IOverrideInputs,
  bounds: Bounds,
  trans: TranslationBundle = AS_WRITTEN
): { resources: { cpu?: number; memory?: string }; timeout?: number; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const resources: { cpu?: number; memory?: string } = {};
  let timeout: number | undefined;
  const read = (key: 'cpu' | 'memory' | 'timeout', scale: number, notPositive: string, show: (v: number) => string) => {
    const text = inputs[key].trim();
    if (!text) {
      return undefined;
    }
    const v = Number(text);
    if (!Number.isFinite(v) || v <= 0) {
      errors[key] = notPositive;
      return undefined;
    }
    const value = v * scale;
    const b = bounds[key];
    if (b && (value < b[0] - 1e-9 || value > b[1] + 1e-9)) {
      errors[key] = trans.__("must be between %1 and %2 (the admin's bounds)", show(b[0]), show(b[1]));
      return undefined;
    }
    return value;
  };
  const cpu = read('cpu', 1, trans.__('must be a positive number of cores'), v => `${v}`);
  if (cpu !== undefined) {
    resources.cpu = cpu;
  }
  const memory = inputs.memory.trim();
  if (memory) {
    if (/^[0-9]*\.?[0-9]+$/.test(memory)) {
      // the field's unit; within the admin's bounds as the others are
      const bytes = read('memory', GB, trans.__('must be a positive number of GiB'), bytesText);
      if (bytes !== undefined) {
        resources.memory = `${memory}GiB`;
      }
    } else {
      resources.memory = memory.replace(/\s+/g, '');
    }
  }
  const t = read('timeout', 60, trans.__('must be a positive number of minutes'), v => timeText(v, trans));
  if (t !== undefined) {
    timeout = Math.round(t);
  }
  return { resources, timeout, errors };
}

/**
 * Where the service gave less or more than the user asked (it clamps requests to the
 * admin's bounds): a note per field, e.g. {cpu: "the admin's bounds allow 2 cpu: the job gets that"}.
 */
export function clampNotes(
  requested: { cpu?: number; memory?: number; timeout?: number },
  allocated: IResources,
  trans: TranslationBundle = AS_WRITTEN
): Record<string, string> {
  const notes: Record<string, string> = {};
  const show: Record<string, (v: number) => string> = {
    cpu: v => cpuText(v, trans),
    memory: v => bytesText(v),
    timeout: v => timeText(v, trans)
  };
  for (const key of ['cpu', 'memory', 'timeout'] as const) {
    const asked = requested[key];
    const got = allocated[key];
    if (asked == null || got == null) {
      continue;
    }
    if (Math.abs(Number(got) - asked) > 0.01 * asked) {
      notes[key] = trans.__("the admin's bounds allow %1: the job gets that", show[key](Number(got)));
    }
  }
  return notes;
}

/** The "Repeat on a schedule" fields. */
export interface IScheduleInputs {
  on: boolean;
  /** every hour (at `minute`), every day or weekday (at `time`), or a `cron` expression */
  every: 'hour' | 'day' | 'weekday' | 'cron';
  minute: string;
  /** "HH:MM" */
  time: string;
  cron: string;
}

/** The cron of the schedule fields ('' when they do not make one). */
export function cronOf(s: IScheduleInputs): string {
  if (s.every === 'cron') {
    const cron = s.cron.trim().split(/\s+/).join(' ');
    return cron.startsWith('@') || cron.split(' ').length === 5 ? cron : '';
  }
  if (s.every === 'hour') {
    const m = Number(s.minute);
    return s.minute.trim() !== '' && Number.isInteger(m) && m >= 0 && m <= 59 ? `${m} * * * *` : '';
  }
  const t = /^(\d{1,2}):(\d{2})/.exec(s.time.trim());
  if (!t || Number(t[1]) > 23 || Number(t[2]) > 59) {
    return '';
  }
  return `${Number(t[2])} ${Number(t[1])} * * ${s.every === 'weekday' ? '1-5' : '*'}`;
}

/** The schedule in words: "Runs every weekday at 08:30 (Europe/Paris)". */
export function scheduleText(s: IScheduleInputs, zone: string, trans: TranslationBundle = AS_WRITTEN): string {
  const cron = cronOf(s);
  if (!cron) {
    return '';
  }
  const pad = (n: string) => n.padStart(2, '0');
  if (s.every === 'hour') {
    return trans.__('Runs every hour at minute %1 (%2).', Number(s.minute), zone);
  }
  if (s.every === 'day' || s.every === 'weekday') {
    const [hh, mm] = s.time.split(':');
    const at = `${pad(hh)}:${pad(mm.slice(0, 2))}`;
    return s.every === 'day' ? trans.__('Runs every day at %1 (%2).', at, zone) : trans.__('Runs every weekday at %1 (%2).', at, zone);
  }
  return trans.__('Runs on the cron "%1" (%2).', cron, zone);
}
