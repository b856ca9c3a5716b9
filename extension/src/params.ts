/**
 * The notebook's `parameters` cell, read into form fields and back.
 *
 * papermill injects parameters as Python literals after the tagged cell, so the dialog
 * only needs the names, their current values and a type to choose an input: a field is
 * typed when its value is a plain literal (or annotated, `alpha: float = 0.5`), and kept
 * as free text when it is an expression (`n = 2 ** 10`), which is sent only if edited.
 */

export type ParamType = 'int' | 'float' | 'bool' | 'str' | 'none' | 'json' | 'expr';

export interface IParameterField {
  /** The variable name. */
  name: string;
  /** The input kind the dialog shows. */
  type: ParamType;
  /** The current value as JSON (undefined for an expression). */
  value: unknown;
  /** The value as written in the cell. */
  source: string;
  /** A trailing `# comment`, shown as the field's help. */
  help: string;
}

const ASSIGN = /^([A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*([A-Za-z_][\w.[\], ]*?))?\s*=(?!=)\s*(.*)$/;
const ANNOTATION_TYPES: Record<string, ParamType> = {
  int: 'int',
  float: 'float',
  bool: 'bool',
  str: 'str',
  list: 'json',
  dict: 'json'
};

/**
 * Walk Python source, handing `visit` the index of each character outside string
 * literals (strings, escapes and triple quotes are skipped whole). `visit` may return the
 * index to go on after, or null to stop. Returns the quote left open at the end ('' if none).
 */
function scanCode(text: string, visit: (i: number) => number | null | void): string {
  let quote = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') {
        i++;
      } else if (text.startsWith(quote, i)) {
        i += quote.length - 1;
        quote = '';
      }
    } else if (c === '"' || c === "'") {
      quote = text.startsWith(c.repeat(3), i) ? c.repeat(3) : c;
      i += quote.length - 1;
    } else {
      const next = visit(i);
      if (next === null) {
        break;
      }
      if (next !== undefined) {
        i = next;
      }
    }
  }
  return quote;
}

/** Split `value  # comment` at the first `#` outside a string literal. */
export function splitComment(text: string): [string, string] {
  let at = -1;
  scanCode(text, i => {
    if (text[i] === '#') {
      at = i;
      return null;
    }
  });
  return at < 0 ? [text.trim(), ''] : [text.slice(0, at).trim(), text.slice(at + 1).trim()];
}

/** Whether a value goes on to the next line: an open bracket, triple quote or backslash. */
function isOpen(text: string): boolean {
  let depth = 0;
  const quote = scanCode(text, i => {
    const c = text[i];
    if (c === '#') {
      const eol = text.indexOf('\n', i);
      return eol < 0 ? text.length : eol; // a comment runs to the end of its line
    }
    if ('([{'.includes(c)) {
      depth++;
    } else if (')]}'.includes(c)) {
      depth--;
    }
  });
  return depth > 0 || quote.length === 3 || text.trimEnd().endsWith('\\');
}

/**
 * A Python literal (numbers, strings, True/False/None, lists, tuples, dicts of those)
 * as a JSON value; throws when the text is not such a literal.
 */
export function parsePythonLiteral(text: string): unknown {
  let i = 0;
  const s = text.trim();
  const fail = (what: string): never => {
    throw new Error(`${what} at position ${i} of ${JSON.stringify(s)}`);
  };
  const ws = () => {
    while (i < s.length && /\s/.test(s[i])) {
      i++;
    }
  };
  const value = (): unknown => {
    ws();
    const c = s[i];
    if (c === '[' || c === '(') {
      const close = c === '[' ? ']' : ')';
      i++;
      const items: unknown[] = [];
      ws();
      while (s[i] !== close) {
        items.push(value());
        ws();
        if (s[i] === ',') {
          i++;
          ws();
        } else if (s[i] !== close) {
          fail(`expected ',' or '${close}'`);
        }
      }
      i++;
      return items;
    }
    if (c === '{') {
      i++;
      const obj: Record<string, unknown> = {};
      ws();
      while (s[i] !== '}') {
        const key = value();
        if (typeof key !== 'string') {
          fail('dict keys must be strings');
        }
        ws();
        if (s[i] !== ':') {
          fail("expected ':'");
        }
        i++;
        obj[key as string] = value();
        ws();
        if (s[i] === ',') {
          i++;
          ws();
        } else if (s[i] !== '}') {
          fail("expected ',' or '}'");
        }
      }
      i++;
      return obj;
    }
    const str = /^([rRbBuU]?)("""|'''|"|')/.exec(s.slice(i));
    if (str) {
      const raw = str[1].toLowerCase() === 'r';
      const quote = str[2];
      i += str[0].length;
      let out = '';
      while (i < s.length && !s.startsWith(quote, i)) {
        if (s[i] === '\\' && !raw) {
          const e = s[i + 1];
          const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '0': '\0' };
          out += e in map ? map[e] : '\\' + e;
          i += 2;
        } else {
          out += s[i++];
        }
      }
      if (i >= s.length) {
        fail('unterminated string');
      }
      i += quote.length;
      ws();
      // adjacent literals concatenate, as in Python
      if (/^[rRbBuU]?("|')/.test(s.slice(i))) {
        return out + (value() as string);
      }
      return out;
    }
    const word = /^(True|False|None)\b/.exec(s.slice(i));
    if (word) {
      i += word[0].length;
      return word[0] === 'True' ? true : word[0] === 'False' ? false : null;
    }
    const num = /^[-+]?(\d[\d_]*\.?[\d_]*([eE][-+]?\d+)?|\.\d[\d_]*([eE][-+]?\d+)?)/.exec(s.slice(i));
    if (num) {
      i += num[0].length;
      return Number(num[0].replace(/_/g, ''));
    }
    return fail('not a literal');
  };
  const result = value();
  ws();
  if (i !== s.length) {
    fail('unexpected text');
  }
  return result;
}

/** The input kind for a value (and an optional annotation). */
export function typeOf(value: unknown, annotation?: string): ParamType {
  const annotated = annotation ? ANNOTATION_TYPES[annotation.trim()] : undefined;
  if (annotated) {
    return annotated;
  }
  if (value === null) {
    return 'none';
  }
  switch (typeof value) {
    case 'boolean':
      return 'bool';
    case 'string':
      return 'str';
    case 'number':
      return Number.isInteger(value) && !/[.eE]/.test(String(value)) ? 'int' : 'float';
    default:
      return 'json';
  }
}

/** Fields for every top-level assignment in a `parameters` cell's source. */
export function parseParameters(source: string): IParameterField[] {
  const fields: IParameterField[] = [];
  const lines = source.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const m = ASSIGN.exec(lines[n]);
    if (!m) {
      continue; // comments, imports, indented lines, blank lines
    }
    let rhs = m[3];
    while (isOpen(rhs) && n + 1 < lines.length) {
      rhs += '\n' + lines[++n];
    }
    // comments may follow each line of a value spread over lines
    const parts = rhs.split('\n').map(splitComment);
    const code = parts.map(p => p[0]).join('\n').trim();
    const help = parts[0][1];
    let value: unknown;
    let type: ParamType;
    try {
      value = parsePythonLiteral(code);
      type = typeOf(value, m[2]);
      if (type === 'int' && !m[2] && /[.eE]/.test(code)) {
        type = 'float'; // `x = 1.0` is a float though JSON cannot tell 1.0 from 1
      }
    } catch {
      value = undefined;
      type = 'expr';
    }
    const existing = fields.findIndex(f => f.name === m[1]);
    const field = { name: m[1], type, value, source: code, help };
    if (existing >= 0) {
      fields[existing] = field; // the last assignment wins, as when the cell runs
    } else {
      fields.push(field);
    }
  }
  return fields;
}

/**
 * The value a form input stands for, in the field's type; throws an Error whose message
 * says what is wrong, for display beside the field.
 */
export function readInput(field: IParameterField, input: string | boolean): unknown {
  if (field.type === 'bool') {
    return Boolean(input);
  }
  const text = String(input);
  switch (field.type) {
    case 'int': {
      if (!/^\s*[-+]?\d[\d_]*\s*$/.test(text)) {
        throw new Error('must be a whole number');
      }
      return Number(text.replace(/_/g, ''));
    }
    case 'float': {
      const v = Number(text.trim());
      if (text.trim() === '' || !Number.isFinite(v)) {
        throw new Error('must be a number');
      }
      return v;
    }
    case 'str':
      return text;
    default:
      // json, none and expr: a Python or JSON literal
      try {
        return parsePythonLiteral(text);
      } catch {
        try {
          return JSON.parse(text);
        } catch {
          throw new Error('must be a Python literal, e.g. 3, "text", [1, 2] or {"k": 1}');
        }
      }
  }
}

/** How a field's current value is shown in its input. */
export function displayValue(field: IParameterField): string {
  if (field.type === 'expr') {
    return field.source;
  }
  if (field.type === 'str') {
    return String(field.value);
  }
  if (field.type === 'int' || field.type === 'float') {
    return String(field.value);
  }
  return field.source;
}

/**
 * Only the parameters the user changed: papermill injects them after the cell, so an
 * unchanged value (or an expression left alone) needs no override.
 */
export function changedParameters(
  fields: IParameterField[],
  inputs: Record<string, string | boolean>
): { parameters: Record<string, unknown>; errors: Record<string, string> } {
  const parameters: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const field of fields) {
    if (!(field.name in inputs)) {
      continue;
    }
    const input = inputs[field.name];
    if (field.type !== 'bool' && String(input) === displayValue(field)) {
      continue;
    }
    try {
      const value = readInput(field, input);
      if (JSON.stringify(value) !== JSON.stringify(field.value)) {
        parameters[field.name] = value;
      }
    } catch (e) {
      errors[field.name] = (e as Error).message;
    }
  }
  return { parameters, errors };
}

/** The source of the cell tagged `parameters` in a notebook's JSON, or null. */
export function parametersCellSource(notebook: any): string | null {
  for (const cell of notebook?.cells ?? []) {
    const tags: string[] = cell?.metadata?.tags ?? [];
    if (cell.cell_type === 'code' && tags.includes('parameters')) {
      return Array.isArray(cell.source) ? cell.source.join('') : String(cell.source ?? '');
    }
  }
  return null;
}

/** The `parameters` cell of a jupytext percent-format script (`# %% tags=["parameters"]`). */
export function scriptParametersSource(script: string): string | null {
  const lines = script.split('\n');
  const start = lines.findIndex(l => /^#\s*%%.*tags\s*=\s*\[[^\]]*["']parameters["']/.test(l));
  if (start < 0) {
    return null;
  }
  const end = lines.findIndex((l, i) => i > start && /^#\s*%%/.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}
