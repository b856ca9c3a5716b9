import { IParameterField, readValues, sweepParameters, sweepText, switchedInput } from '../params';

const field = (name: string, type: IParameterField['type'], value: unknown, source: string): IParameterField => ({
  name, type, value, source, help: ''
});
const n = field('n', 'int', 3, '3');
const lr = field('lr', 'float', 0.5, '0.5');
const word = field('word', 'str', 'x', "'x'");
const flag = field('flag', 'bool', false, 'False');
const xs = field('xs', 'json', [1], '[1]');
const size = field('size', 'expr', null, '2 ** 3');

describe('readValues: comma-separated values in the field type', () => {
  it('reads whole numbers, numbers, text and booleans, trimmed', () => {
    expect(readValues(n, '1, 2,3')).toEqual([1, 2, 3]);
    expect(readValues(n, '1_000')).toEqual([1000]);
    expect(readValues(lr, '0.01, 1e-3, -2')).toEqual([0.01, 0.001, -2]);
    expect(readValues(word, ' a , b c,42')).toEqual(['a', 'b c', '42']); // text stays text
    expect(readValues(flag, 'true, False')).toEqual([true, false]);
  });

  it('takes a JSON list too, so a string may hold a comma', () => {
    expect(readValues(n, '[4, 5]')).toEqual([4, 5]);
    expect(readValues(word, '["a, b", "c"]')).toEqual(['a, b', 'c']);
    expect(readValues(flag, '[true, false]')).toEqual([true, false]);
    expect(readValues(word, '[x], y')).toEqual(['[x]', 'y']); // not JSON: two strings
  });

  it("reads a list's, a dict's or an expression's field as JSON values", () => {
    expect(readValues(xs, '[1, 2], [3]')).toEqual([[1, 2], [3]]);
    expect(readValues(xs, '[1, 2]')).toEqual([[1, 2]]); // one list, not two values
    expect(readValues(size, '8, 16')).toEqual([8, 16]);
    expect(() => readValues(xs, '[1, 2], oops')).toThrow(/JSON values separated by commas/);
  });

  it('names the value that the field cannot take, by its place', () => {
    expect(() => readValues(n, '1, abc')).toThrow('value 2 ("abc") must be a whole number');
    expect(() => readValues(n, '1.5')).toThrow('value 1 ("1.5") must be a whole number');
    expect(() => readValues(n, '[1, 2.5]')).toThrow('value 2 (2.5) must be a whole number');
    expect(() => readValues(lr, '0.1, inf')).toThrow('value 2 ("inf") must be a number');
    expect(() => readValues(flag, 'true, yes')).toThrow('value 2 ("yes") must be true or false');
    expect(() => readValues(word, '["a", 3]')).toThrow('value 2 (3) must be text');
    expect(() => readValues(n, '1,,2')).toThrow('value 2 ("") is empty');
    expect(() => readValues(n, '  ')).toThrow('give at least one value');
  });
});

describe('sweepParameters: the grid and its number of runs', () => {
  const fields = [n, lr, word, flag, xs, size];
  it('sends what the user changed as lists, and multiplies their lengths', () => {
    const grid = sweepParameters(fields, { n: '1, 2', lr: '0.5', word: 'a, b, c', flag: 'false', xs: '[1]', size: '2 ** 3' });
    expect(grid.errors).toEqual({});
    expect(grid.parameters).toEqual({ n: [1, 2], word: ['a', 'b', 'c'] });
    expect(grid.runs).toBe(6);
  });

  it('sends one changed value as a list of one', () => {
    expect(sweepParameters(fields, { lr: '0.1', flag: 'true' })).toEqual({ parameters: { lr: [0.1], flag: [true] }, errors: {}, runs: 1 });
  });

  it('keeps an error by field', () => {
    const grid = sweepParameters(fields, { n: '1, abc', lr: '0.1, 0.2' });
    expect(grid.errors).toEqual({ n: 'value 2 ("abc") must be a whole number' });
    expect(grid.parameters).toEqual({ lr: [0.1, 0.2] });
  });
});

describe('the Sweep switch', () => {
  it('shows each field as its one value', () => {
    expect(sweepText(flag)).toBe('false');
    expect(sweepText(xs)).toBe('[1]');
    expect(sweepText(size)).toBe('2 ** 3');
  });

  it('turns a switch into its text and back; several values fall back to the notebook\'s', () => {
    expect(switchedInput(flag, true, true)).toBe('true');
    expect(switchedInput(flag, 'True', false)).toBe(true);
    expect(switchedInput(flag, 'true, false', false)).toBe(false);
    expect(switchedInput(n, '1, 2', false)).toBe('1, 2');
  });
});
