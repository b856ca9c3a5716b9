import { changedParameters, displayValue, inputOf, IParameterField, readInput } from '../params';

/** Fields as the service's dry run describes them (notebook_parameters). */
const field = (name: string, type: IParameterField['type'], value: unknown, source: string, help = ''): IParameterField => ({
  name, type, value, source, help
});
const fields = [
  field('n', 'int', 3, '3'),
  field('alpha', 'float', 0.5, '0.5'),
  field('word', 'str', 'x', "'x'"),
  field('flag', 'bool', false, 'False'),
  field('size', 'expr', null, '2 ** 3'),
  field('xs', 'json', [1], '[1]'),
  field('opts', 'json', { k: null }, "{'k': None}"),
  field('nothing', 'none', null, 'None')
];
const by = Object.fromEntries(fields.map(f => [f.name, f]));

describe('displayValue', () => {
  it('shows literals as values, lists and dicts as JSON, expressions as the cell writes them', () => {
    expect(displayValue(by.n)).toBe('3');
    expect(displayValue(by.word)).toBe('x');
    expect(displayValue(by.opts)).toBe('{"k": null}');
    expect(displayValue(by.size)).toBe('2 ** 3');
    expect(displayValue(by.nothing)).toBe('None');
  });
});

describe('readInput and changedParameters', () => {
  it('sends only what the user changed, in the field type', () => {
    const { parameters, errors } = changedParameters(fields, {
      n: '4', alpha: '0.5', word: 'hello', flag: true, size: '2 ** 3', xs: '[1, 2]', opts: '{"k": null}', nothing: 'None'
    });
    expect(errors).toEqual({});
    expect(parameters).toEqual({ n: 4, word: 'hello', flag: true, xs: [1, 2] });
  });

  it('sends an edited expression as the value typed', () => {
    expect(changedParameters(fields, { size: '8' }).parameters).toEqual({ size: 8 });
    expect(changedParameters(fields, { nothing: 'True' }).parameters).toEqual({ nothing: true });
  });

  it('names what is wrong with an input', () => {
    const { errors } = changedParameters(fields, { n: '4.5', alpha: 'abc', size: 'np.pi' });
    expect(errors.n).toBe('must be a whole number');
    expect(errors.alpha).toBe('must be a number');
    expect(errors.size).toMatch(/JSON value/);
  });

  it('keeps a string typed as text even when it looks like a number', () => {
    expect(readInput(by.word, '42')).toBe('42');
  });

  it('shows the values a job ran with in the inputs', () => {
    expect(inputOf(by.word, 'galaxy')).toBe('galaxy');
    expect(inputOf(by.n, 21)).toBe('21');
    expect(inputOf(by.flag, true)).toBe(true);
    expect(inputOf(by.xs, [1, 2])).toBe('[1, 2]');
  });
});
