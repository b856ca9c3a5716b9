import { errorFromResponse, formFieldOf, JobsError, networkError } from '../errors';
import { boundsOf, clampNotes, cronOf, readOverrides, resourcesText, scheduleText } from '../sizing';

describe('errorFromResponse', () => {
  it("reads the service's JSON error", () => {
    const e = errorFromResponse(400, JSON.stringify({ error: { code: 'invalid_input', message: 'unknown parameter(s) beta; the notebook\'s parameters are: alpha' } }));
    expect(e.message).toMatch(/unknown parameter/);
    expect(e.code).toBe('invalid_input');
    expect(e.serviceDown).toBe(false);
  });

  it('calls a down service a down service, whatever the body', () => {
    const e = errorFromResponse(503, JSON.stringify({ error: { code: 'service_unavailable', message: 'The notebook-jobs service is not answering' } }));
    expect(e.serviceDown).toBe(true);
    expect(e.message).toMatch(/not answering/);
    expect(errorFromResponse(502, '<html>Bad gateway</html>').message).toBe('the server answered 502');
    expect(networkError(new Error('Failed to fetch')).serviceDown).toBe(true);
  });

  it('says when the server extension is missing, and when access is refused', () => {
    expect(errorFromResponse(404, '').message).toMatch(/server extension/);
    expect(errorFromResponse(403, JSON.stringify({ error: { code: 'forbidden', message: 'no scope' } })).message).toBe('Not allowed: no scope');
  });

  it('reads jupyter_server error shapes too', () => {
    expect(errorFromResponse(500, JSON.stringify({ message: 'boom', reason: null })).message).toBe('boom');
  });
});

describe('the field of an error', () => {
  it("reads the service's error.field, and none from a message", () => {
    const body = { error: { code: 'invalid_input', message: 'alpha must be a float', status: 400, field: '/parameters/alpha' } };
    expect(errorFromResponse(400, JSON.stringify(body)).field).toBe('/parameters/alpha');
    expect(errorFromResponse(400, JSON.stringify({ error: { code: 'invalid_input', message: "memory '3XB' is not a size" } })).field).toBeUndefined();
    expect(errorFromResponse(400, JSON.stringify({ error: { message: 'x', field: 'memory' } })).field).toBeUndefined(); // not a pointer
  });
  it('names the form field a pointer points at', () => {
    expect(formFieldOf('/parameters/alpha')).toEqual({ parameter: 'alpha' });
    expect(formFieldOf('/parameters')).toEqual({ key: 'parameters' });
    expect(formFieldOf('/resources/memory')).toEqual({ key: 'memory' });
    expect(formFieldOf('/timeout')).toEqual({ key: 'timeout' });
    expect(formFieldOf('/parameters/a~1b~0c')).toEqual({ parameter: 'a/b~c' }); // RFC 6901 escapes
    expect(formFieldOf(undefined)).toBeNull();
    expect(formFieldOf('')).toBeNull();
  });
  it('is a JobsError with a status', () => {
    expect(new JobsError('x', 409).status).toBe(409);
  });
});

describe('schedule fields', () => {
  const base = { on: true, every: 'day' as const, minute: '0', time: '08:30', cron: '' };
  it('makes a cron of each choice', () => {
    expect(cronOf({ ...base, every: 'hour', minute: '15' })).toBe('15 * * * *');
    expect(cronOf(base)).toBe('30 8 * * *');
    expect(cronOf({ ...base, every: 'weekday', time: '17:05' })).toBe('5 17 * * 1-5');
    expect(cronOf({ ...base, every: 'cron', cron: ' 0  */2 * * * ' })).toBe('0 */2 * * *');
    expect(cronOf({ ...base, every: 'cron', cron: '@daily' })).toBe('@daily');
  });
  it('makes none of what is incomplete', () => {
    expect(cronOf({ ...base, every: 'hour', minute: '60' })).toBe('');
    expect(cronOf({ ...base, every: 'hour', minute: '' })).toBe('');
    expect(cronOf({ ...base, time: '' })).toBe('');
    expect(cronOf({ ...base, every: 'cron', cron: '0 8 * *' })).toBe('');
  });
  it('says it in words, with the time zone', () => {
    expect(scheduleText({ ...base, every: 'weekday' }, 'Europe/Paris')).toBe('Runs every weekday at 08:30 (Europe/Paris).');
  });
});

describe('sizing', () => {
  const bounds = boundsOf({ resources: { bounds: { cpu: [0.25, 2], memory: [256 * 1024 ** 2, 4 * 1024 ** 3], timeout: [60, 3600] } } } as any);
  it('reads overrides into request fields', () => {
    expect(readOverrides({ cpu: '1.5', memory: '2', timeout: '10' }, bounds)).toEqual({
      resources: { cpu: 1.5, memory: '2GiB' }, timeout: 600, errors: {}
    });
    expect(readOverrides({ cpu: '', memory: '', timeout: '' }, bounds)).toEqual({ resources: {}, timeout: undefined, errors: {} });
  });
  it('sends memory as typed: the sizes the API takes (the service judges them)', () => {
    for (const typed of ['256MB', '2GB', '2g', '512m', '1.5GiB', '1073741824B', 'lots']) {
      expect(readOverrides({ cpu: '', memory: typed, timeout: '' }, bounds)).toEqual({
        resources: { memory: typed }, timeout: undefined, errors: {}
      });
    }
    expect(readOverrides({ cpu: '', memory: ' 512 MB ', timeout: '' }, bounds).resources).toEqual({ memory: '512MB' });
    // a bare number is the field's unit, GiB, within the bounds like the other fields
    expect(readOverrides({ cpu: '', memory: '0.5', timeout: '' }, bounds).resources).toEqual({ memory: '0.5GiB' });
    expect(readOverrides({ cpu: '', memory: '64', timeout: '' }, bounds).errors.memory).toMatch(/between 256 MiB and 4 GiB/);
  });
  it("refuses overrides outside the admin's bounds, and non-numbers", () => {
    const r = readOverrides({ cpu: '8', memory: '', timeout: '120' }, bounds);
    expect(r.errors.cpu).toMatch(/between 0.25 and 2/);
    expect(r.errors.timeout).toMatch(/between 60 s and 60 min/);
    expect(readOverrides({ cpu: 'two', memory: '', timeout: '' }, bounds).errors.cpu).toMatch(/positive number of cores/);
  });
  it('notes where the service clamped an override', () => {
    expect(clampNotes({ cpu: 8, memory: 1024 ** 3 }, { cpu: 2, memory: 1024 ** 3, timeout: 600 })).toEqual({
      cpu: "the admin's bounds allow 2 cpu: the job gets that"
    });
    expect(clampNotes({}, { cpu: 2 })).toEqual({});
  });
  it('describes an allocation', () => {
    expect(resourcesText({ cpu: 1, memory: 2 * 1024 ** 3, timeout: 600 })).toBe('1 cpu · 2 GiB · 10 min');
  });
});
