import { changedParameters, IParameterField, ownValue, sweepParameters } from '../params';

/** Parameters named as every JavaScript object's own members: Python names like any other. */
const field = (name: string, type: IParameterField['type'], value: unknown, source: string): IParameterField => ({
  name, type, value, source, help: ''
});
const proto = field('__proto__', 'int', 0, '0');
const ctor = field('constructor', 'str', 'a', "'a'");
/** The inputs as the dialog reads them (JSON: `__proto__` an own key, not the prototype). */
const typed = (text: string) => JSON.parse(text) as Record<string, string>;

describe('a parameter named __proto__ or constructor', () => {
  it('is sent when changed, as a key of its own', () => {
    const { parameters, errors } = changedParameters([proto, ctor], typed('{"__proto__": "5", "constructor": "b"}'));
    expect(errors).toEqual({});
    expect(JSON.parse(JSON.stringify(parameters))).toEqual(typed('{"__proto__": 5, "constructor": "b"}'));
  });

  it('has no value the form did not give: none inherited', () => {
    expect(changedParameters([proto, ctor], {})).toEqual({ parameters: {}, errors: {} });
    expect(sweepParameters([proto, ctor], {}).parameters).toEqual({});
    expect(ownValue({}, 'constructor')).toBeUndefined();
    expect(ownValue(typed('{"constructor": 1}'), 'constructor')).toBe(1);
  });

  it('takes a sweep of values', () => {
    const { parameters, runs } = sweepParameters([proto, ctor], typed('{"__proto__": "1, 2", "constructor": "a"}'));
    expect(runs).toBe(2);
    expect(JSON.stringify(parameters)).toBe('{"__proto__":[1,2]}');
  });
});
