/**
 * The notebook's parameters as form fields, and the form's inputs read back into values.
 *
 * The fields are the service's reading of the notebook's `parameters` cell (its dry run's
 * `notebook_parameters`): name, input type, default as JSON (`value`), the cell's text
 * (`source`) and its trailing comment (`help`). papermill injects values as literals after the
 * cell, so only what the user changed is sent; an expression left alone (`n = 2 ** 10`) stays.
 */

/** The input a field shows: `json` for lists and dicts, `expr` for a default that is no literal. */
export type ParamType = 'int' | 'float' | 'bool' | 'str' | 'none' | 'json' | 'expr';

/** One parameter, as the service's dry run describes it. */
export interface IParameterField {
  name: string;
  type: ParamType;
  /** The default as JSON (null for an expression). */
  value: unknown;
  /** The default as the cell writes it. */
  source: string;
  /** The cell's comment on it, shown as the field's help. */
  help: string;
  /** Its type annotation (`rows: int = 10`), if any. */
  annotation?: string | null;
}

/**
 * An empty map of parameter names to values. A parameter may be named `__proto__` or `constructor`
 * (Python names like any): in a plain object the first would set its prototype and be lost, and
 * the second would be found in every object.
 */
export function namesMap<T>(): Record<string, T> {
  return Object.create(null);
}

/** The value `values` has of its own under `name` (none that every object inherits). */
export function ownValue<T>(values: Record<string, T> | null | undefined, name: string): T | undefined {
  return values && Object.prototype.hasOwnProperty.call(values, name) ? values[name] : undefined;
}

/** The words a person may type for Python's constants, read as JSON's. */
const CONSTANTS: Record<string, unknown> = { True: true, False: false, None: null };

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
      // json, none and expr: a value as JSON writes it (True, False and None read too)
      if (text.trim() in CONSTANTS) {
        return CONSTANTS[text.trim()];
      }
      try {
        return JSON.parse(text);
      } catch {
        throw new Error('must be a JSON value, e.g. 3, "text", [1, 2] or {"k": 1}');
      }
  }
}

/** A value as JSON with Python's spacing (`[1, 2]`, `{"k": 1}`), to show and to edit. */
function jsonText(value: unknown): string {
  if (Array.isArray(value)) {
    return `[${value.map(jsonText).join(', ')}]`;
  }
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${jsonText(v)}`).join(', ')}}`;
  }
  return JSON.stringify(value);
}

/** How a field's current value is shown in its input. */
export function displayValue(field: IParameterField): string {
  switch (field.type) {
    case 'str':
    case 'int':
    case 'float':
      return String(field.value);
    case 'json':
      return jsonText(field.value);
    default:
      return field.source; // None, or an expression: as the cell writes it
  }
}

/**
 * Only the parameters the user changed: papermill injects them after the cell, so an
 * unchanged value (or an expression left alone) needs no override.
 */
export function changedParameters(
  fields: IParameterField[],
  inputs: Record<string, string | boolean>
): { parameters: Record<string, unknown>; errors: Record<string, string> } {
  const parameters = namesMap<unknown>();
  const errors: Record<string, string> = {};
  for (const field of fields) {
    const input = ownValue(inputs, field.name);
    if (input === undefined) {
      continue;
    }
    if (field.type !== 'bool' && String(input) === displayValue(field)) {
      continue;
    }
    try {
      const value = readInput(field, input);
      if (JSON.stringify(value) !== JSON.stringify(field.value) || field.type === 'expr') {
        parameters[field.name] = value;
      }
    } catch (e) {
      errors[field.name] = (e as Error).message;
    }
  }
  return { parameters, errors };
}

/** What a parameter's input shows for a value a job ran with. */
export function inputOf(field: IParameterField, value: unknown): string | boolean {
  if (field.type === 'bool') {
    return Boolean(value);
  }
  return typeof value === 'string' && field.type === 'str' ? value : jsonText(value);
}

/** Python's words for a boolean, read as one (any case: `True`, `false`). */
function readBool(text: string): boolean {
  const word = text.trim().toLowerCase();
  if (word !== 'true' && word !== 'false') {
    throw new Error('must be true or false');
  }
  return word === 'true';
}

/** The types whose values a sweep's field separates by commas one by one (the others are JSON values). */
const SCALARS: ParamType[] = ['int', 'float', 'str', 'bool'];

/**
 * The values a sweep's field stands for: comma-separated, each in the field's type
 * (`0.01, 0.1, 1`; `a, b`; `true, false`), or a JSON list of them (`["a, b", "c"]`: a
 * string with a comma); a list's, a dict's or an expression's field takes JSON values
 * separated by commas (`[1, 2], [3]`). Throws an Error naming the value at fault.
 */
export function readValues(field: IParameterField, input: string): unknown[] {
  const text = input.trim();
  if (!text) {
    throw new Error('give at least one value');
  }
  if (!SCALARS.includes(field.type)) {
    try {
      return JSON.parse(`[${text}]`);
    } catch {
      throw new Error('must be JSON values separated by commas, e.g. [1, 2], [3]');
    }
  }
  let values: unknown[] | null = null;
  if (text.startsWith('[')) {
    try {
      values = JSON.parse(text);
    } catch {
      values = null; // not JSON: "[x], y" are two strings
    }
  }
  const pieces = Array.isArray(values) ? values : text.split(',').map(piece => piece.trim());
  return pieces.map((value, i) => {
    try {
      if (value === '') {
        throw new Error('is empty');
      }
      if (field.type === 'str' && typeof value !== 'string') {
        throw new Error('must be text');
      }
      return field.type === 'bool' ? readBool(String(value)) : readInput(field, String(value));
    } catch (e) {
      throw new Error(`value ${i + 1} (${JSON.stringify(value)}) ${(e as Error).message}`);
    }
  });
}

/** How a field's own value is shown in Sweep mode: as its one value. */
export function sweepText(field: IParameterField): string {
  return field.type === 'bool' ? String(Boolean(field.value)) : displayValue(field);
}

/**
 * A sweep's grid: each parameter the user changed, as the list of its values (the service
 * runs their cartesian product), and how many runs that makes. A field left as the notebook
 * has it is not sent: each run keeps the notebook's own value.
 */
export function sweepParameters(
  fields: IParameterField[],
  inputs: Record<string, string | boolean>
): { parameters: Record<string, unknown[]>; errors: Record<string, string>; runs: number } {
  const parameters = namesMap<unknown[]>();
  const errors: Record<string, string> = {};
  let runs = 1;
  for (const field of fields) {
    const input = ownValue(inputs, field.name);
    if (input === undefined || String(input) === sweepText(field)) {
      continue;
    }
    try {
      const values = readValues(field, String(input));
      const unchanged = values.length === 1 && JSON.stringify(values[0]) === JSON.stringify(field.value) && field.type !== 'expr';
      if (!unchanged) {
        parameters[field.name] = values;
        runs *= values.length;
      }
    } catch (e) {
      errors[field.name] = (e as Error).message;
    }
  }
  return { parameters, errors, runs };
}

/** A field's input carried across the Sweep switch: a boolean becomes its text and back. */
export function switchedInput(field: IParameterField, input: string | boolean, sweep: boolean): string | boolean {
  if (field.type !== 'bool') {
    return input;
  }
  if (sweep) {
    return String(Boolean(input));
  }
  try {
    return readBool(String(input));
  } catch {
    return Boolean(field.value); // several values (or none) do not fit one switch
  }
}
