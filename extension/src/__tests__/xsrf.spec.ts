import { withXsrf, xsrfToken } from '../xsrf';

describe('xsrfToken', () => {
  it("reads the _xsrf cookie, whatever its neighbours", () => {
    expect(xsrfToken('_xsrf=abc')).toBe('abc');
    expect(xsrfToken('a=1; _xsrf=2|YWJj|ZGVm|171; jupyterhub-session-id=x')).toBe('2|YWJj|ZGVm|171');
    expect(xsrfToken('a=1;_xsrf=tok')).toBe('tok');
  });

  it('does not take a cookie whose name only ends in _xsrf', () => {
    expect(xsrfToken('my_xsrf=nope')).toBeUndefined();
    expect(xsrfToken('a=b_xsrf=nope')).toBeUndefined();
    expect(xsrfToken('')).toBeUndefined();
  });

  it('is undefined without a document (jest runs in node)', () => {
    expect(xsrfToken()).toBeUndefined();
  });
});

describe('withXsrf', () => {
  it('adds the token as the _xsrf query argument, encoded', () => {
    expect(withXsrf('http://h/user/a/notebook-jobs/api/jobs/j1/events', '2|a b|c')).toBe(
      'http://h/user/a/notebook-jobs/api/jobs/j1/events?_xsrf=2%7Ca%20b%7Cc'
    );
    expect(withXsrf('http://h/x?follow=1', 'tok')).toBe('http://h/x?follow=1&_xsrf=tok');
  });

  it('leaves the URL alone without a token', () => {
    expect(withXsrf('http://h/x', undefined)).toBe('http://h/x');
    expect(withXsrf('http://h/x', '')).toBe('http://h/x');
  });
});
