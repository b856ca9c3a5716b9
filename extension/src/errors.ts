/**
 * Errors from the server extension (and, through it, the service) as readable messages,
 * with the field of the request an error is about when the service names one.
 */
import type { TranslationBundle } from '@jupyterlab/translation';

import { AS_WRITTEN } from './translation';

export class JobsError extends Error {
  constructor(
    message: string,
    /** HTTP status (0 when the Jupyter server itself did not answer). */
    public readonly status: number,
    /** The error code, e.g. `invalid_input` or `service_unavailable`. */
    public readonly code: string = '',
    /**
     * The field of the request the error is about, as a JSON pointer into the body sent
     * (`/parameters/alpha`, `/resources/memory`, `/timeout`); undefined for the whole request.
     */
    public readonly field?: string
  ) {
    super(message);
    this.name = 'JobsError';
  }

  /** Whether the service (not the request) is the problem: show it for the whole panel. */
  get serviceDown(): boolean {
    return this.code === 'service_unavailable' || this.status === 502 || this.status === 503 || this.status === 0;
  }
}

/** A JobsError from a response's status and body text (JSON `{"error": …}` or anything else). */
export function errorFromResponse(status: number, body: string, trans: TranslationBundle = AS_WRITTEN): JobsError {
  let message = '';
  let code = '';
  let field: string | undefined;
  try {
    const data = JSON.parse(body);
    const err = data?.error ?? data;
    if (typeof err === 'string') {
      message = err;
    } else {
      message = err?.message ?? data?.message ?? data?.reason ?? '';
      code = err?.code ?? '';
      field = typeof err?.field === 'string' && err.field.startsWith('/') ? err.field : undefined;
    }
  } catch {
    // an HTML error page, a proxy's text: the status says more than the body
  }
  if (!message) {
    message =
      status === 404
        ? trans.__('not found (is the notebook-jobs server extension enabled?)')
        : status === 403
          ? trans.__('not allowed')
          : status >= 500
            ? trans.__('the server answered %1', status)
            : trans.__('request failed (%1)', status);
  }
  if (status === 401 || status === 403) {
    message = trans.__('Not allowed: %1', message);
  }
  return new JobsError(message, status, code, field);
}

/** A JobsError for a request that got no answer at all. */
export function networkError(e: unknown, trans: TranslationBundle = AS_WRITTEN): JobsError {
  return new JobsError(trans.__('Cannot reach the Jupyter server: %1', (e as Error)?.message ?? e), 0, 'network');
}

/**
 * The form field an error's pointer names: a parameter (`/parameters/alpha`), a resource
 * (`/resources/memory` → `memory`) or a top-level field (`/timeout`, `/name`, `/parameters`);
 * null when the error has no field. A pointer's segments are unescaped as RFC 6901 says.
 */
export function formFieldOf(pointer: string | undefined): { parameter?: string; key?: string } | null {
  if (!pointer || !pointer.startsWith('/')) {
    return null;
  }
  const [first, second] = pointer
    .slice(1)
    .split('/')
    .map(s => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (first === 'parameters' && second !== undefined) {
    return { parameter: second };
  }
  if (first === 'resources' && second !== undefined) {
    return { key: second };
  }
  return { key: first };
}
