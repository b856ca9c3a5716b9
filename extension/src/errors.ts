/**
 * Errors from the server extension (and, through it, the service) as readable messages,
 * and the field of the submit form a validation error belongs to.
 */

export class JobsError extends Error {
  constructor(
    message: string,
    /** HTTP status (0 when the Jupyter server itself did not answer). */
    public readonly status: number,
    /** The error code, e.g. `invalid_input` or `service_unavailable`. */
    public readonly code: string = ''
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
export function errorFromResponse(status: number, body: string): JobsError {
  let message = '';
  let code = '';
  try {
    const data = JSON.parse(body);
    const err = data?.error ?? data;
    if (typeof err === 'string') {
      message = err;
    } else {
      message = err?.message ?? data?.message ?? data?.reason ?? '';
      code = err?.code ?? '';
    }
  } catch {
    // an HTML error page, a proxy's text: the status says more than the body
  }
  if (!message) {
    message =
      status === 404
        ? 'not found (is the notebook-jobs server extension enabled?)'
        : status === 403
          ? 'not allowed'
          : status >= 500
            ? `the server answered ${status}`
            : `request failed (${status})`;
  }
  if (status === 401 || status === 403) {
    message = `Not allowed: ${message}`;
  }
  return new JobsError(message, status, code);
}

/** A JobsError for a request that got no answer at all. */
export function networkError(e: unknown): JobsError {
  return new JobsError(`Cannot reach the Jupyter server: ${(e as Error)?.message ?? e}`, 0, 'network');
}

/**
 * The form field a service validation message is about: a parameter name, `cpu`,
 * `memory`, `timeout`, `name` or `output_formats`; '' when it concerns the whole form.
 */
export function fieldsOfError(message: string, parameterNames: string[]): string[] {
  const unknown = /unknown parameter\(s\) ([\w, ]+?)(;|$)/.exec(message);
  if (unknown) {
    return unknown[1].split(',').map(s => s.trim());
  }
  const quoted = /parameter[s]? '?([A-Za-z_]\w*)'?/.exec(message);
  if (quoted && parameterNames.includes(quoted[1])) {
    return [quoted[1]];
  }
  for (const field of ['cpu', 'memory', 'timeout', 'gpu', 'output_formats', 'name', 'cron', 'timezone']) {
    if (new RegExp(`^(resources\\.)?${field}\\b`).test(message)) {
      return [field];
    }
  }
  const named = parameterNames.filter(p => new RegExp(`\\b${p}\\b`).test(message));
  return named.length === 1 ? named : [];
}
