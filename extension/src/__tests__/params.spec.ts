import { changedParameters, parametersCellSource, parseParameters, parsePythonLiteral, readInput, scriptParametersSource } from '../params';

describe('parseParameters', () => {
  it('types each assignment by its literal and keeps comments as help', () => {
    const fields = parseParameters(
      [
        '# the knobs',
        'alpha = 0.5  # learning rate',
        'n = 10',
        'big = 1_000',
        "name = 'run # one'",
        'verbose = True',
        'labels = ["a", \'b\']',
        'opts = {"k": None}',
        'nothing = None',
        'size = 2 ** 10',
        'ratio: float = 1',
        'import math'
      ].join('\n')
    );
    const by = Object.fromEntries(fields.map(f => [f.name, f]));
    expect(fields.map(f => f.name)).toEqual(['alpha', 'n', 'big', 'name', 'verbose', 'labels', 'opts', 'nothing', 'size', 'ratio']);
    expect(by.alpha).toMatchObject({ type: 'float', value: 0.5, help: 'learning rate' });
    expect(by.n).toMatchObject({ type: 'int', value: 10 });
    expect(by.big).toMatchObject({ type: 'int', value: 1000 });
    expect(by.name).toMatchObject({ type: 'str', value: 'run # one', help: '' });
    expect(by.verbose).toMatchObject({ type: 'bool', value: true });
    expect(by.labels).toMatchObject({ type: 'json', value: ['a', 'b'] });
    expect(by.opts).toMatchObject({ type: 'json', value: { k: null } });
    expect(by.nothing).toMatchObject({ type: 'none', value: null });
    expect(by.size).toMatchObject({ type: 'expr', value: undefined, source: '2 ** 10' });
    expect(by.ratio).toMatchObject({ type: 'float', value: 1 });
  });

  it('reads a float written as 1.0 as a float, and joins values spread over lines', () => {
    const fields = parseParameters('x = 1.0\ngrid = [\n  1,\n  2,  # two\n]\ny = 3');
    expect(fields).toHaveLength(3);
    expect(fields[0]).toMatchObject({ name: 'x', type: 'float' });
    expect(fields[1]).toMatchObject({ name: 'grid', type: 'json', value: [1, 2] });
    expect(fields[2]).toMatchObject({ name: 'y', value: 3 });
  });

  it('lets the last assignment of a name win, as running the cell would', () => {
    expect(parseParameters('a = 1\na = 2')).toEqual([expect.objectContaining({ name: 'a', value: 2 })]);
  });

  it('ignores comparisons, indented lines and attribute assignments', () => {
    expect(parseParameters('a == 1\n  b = 2\nc.d = 3')).toEqual([]);
  });
});

describe('parsePythonLiteral', () => {
  it('reads tuples, escapes and negative numbers', () => {
    expect(parsePythonLiteral("(1, -2.5e3, 'a\\nb')")).toEqual([1, -2500, 'a\nb']);
  });
  it('refuses names and calls', () => {
    expect(() => parsePythonLiteral('np.pi')).toThrow();
    expect(() => parsePythonLiteral('f(1)')).toThrow();
  });
});

describe('readInput and changedParameters', () => {
  const fields = parseParameters("n = 3\nalpha = 0.5\nword = 'x'\nflag = False\nsize = 2 ** 3\nxs = [1]");

  it('sends only what the user changed, in the field type', () => {
    const { parameters, errors } = changedParameters(fields, {
      n: '4', alpha: '0.5', word: 'hello', flag: true, size: '2 ** 3', xs: '[1, 2]'
    });
    expect(errors).toEqual({});
    expect(parameters).toEqual({ n: 4, word: 'hello', flag: true, xs: [1, 2] });
  });

  it('names what is wrong with an input', () => {
    const { errors } = changedParameters(fields, { n: '4.5', alpha: 'abc', size: 'np.pi' });
    expect(errors.n).toBe('must be a whole number');
    expect(errors.alpha).toBe('must be a number');
    expect(errors.size).toMatch(/Python literal/);
  });

  it('keeps a string typed as text even when it looks like a number', () => {
    expect(readInput(fields[2], '42')).toBe('42');
  });
});

describe('finding the parameters cell', () => {
  it('in a notebook, by its tag', () => {
    const nb = { cells: [
      { cell_type: 'markdown', metadata: { tags: ['parameters'] }, source: 'no' },
      { cell_type: 'code', metadata: {}, source: 'x = 0' },
      { cell_type: 'code', metadata: { tags: ['parameters'] }, source: ['a = 1\n', 'b = 2'] }
    ] };
    expect(parametersCellSource(nb)).toBe('a = 1\nb = 2');
    expect(parametersCellSource({ cells: [] })).toBeNull();
  });

  it('in a percent-format script', () => {
    const py = '# %%\nimport os\n\n# %% tags=["parameters"]\nalpha = 1\n\n# %%\nprint(alpha)\n';
    expect(scriptParametersSource(py)).toBe('alpha = 1\n');
    expect(scriptParametersSource('print(1)')).toBeNull();
  });
});
