/**
 * A user's text on a line with other text, unable to reorder it: a bidi override (U+202E) in a
 * parameter's value ends with the value, and right-to-left words in it still read right to left.
 * The twin of the service page's `isolated` and `shownJSON` (hub_service/static/jobs.js), held
 * to the same answers by one spec.
 */

/** Bidi controls: embeddings, overrides, isolates and marks. */
const BIDI_CONTROL = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
/** What may reorder a line: a bidi control, or a right-to-left letter (Hebrew, Arabic, Syriac, Thaana, N'Ko…). */
const REORDERS =
  /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFF\u{10800}-\u{10FFF}\u{1E800}-\u{1EFFF}]/u;
const FSI = '\u2068';
const PDI = '\u2069';

/**
 * `text` in an isolate (FSI … PDI) whose end it cannot move: a stray PDI of its own is dropped,
 * an isolate it leaves open is closed. Text that could reorder nothing stays as it is.
 */
export function isolated(text: string): string {
  if (!REORDERS.test(text)) {
    return text;
  }
  let open = 0;
  let out = '';
  for (const c of text) {
    if (c === '\u2066' || c === '\u2067' || c === FSI) {
      open++;
    } else if (c === PDI) {
      if (!open) {
        continue;
      }
      open--;
    }
    out += c;
  }
  return FSI + out + PDI.repeat(open + 1);
}

/** `value` as JSON to show: its bidi controls written as escapes (`\u202e`), so that it reads as it is. */
export function shownJSON(value: unknown): string {
  return JSON.stringify(value).replace(BIDI_CONTROL, c => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/**
 * "alpha=0.5, label=first try" (a string as it is, any other value as JSON), cut at `limit`
 * characters with "…", each value `isolated`: the twin of the page's `shortParameters`.
 */
export function parameterLine(parameters: Record<string, unknown>, limit: number): string {
  let out = '';
  let room = limit;
  for (const [k, v] of Object.entries(parameters)) {
    const head = (out ? ', ' : '') + k + '=';
    const value = typeof v === 'string' ? v : JSON.stringify(v);
    if (head.length + value.length > room) {
      const keep = room - 1 - head.length;
      return out + (keep < 0 ? head.slice(0, room - 1) : head + isolated(value.slice(0, keep))) + '…';
    }
    out += head + isolated(value);
    room -= head.length + value.length;
  }
  return out;
}
