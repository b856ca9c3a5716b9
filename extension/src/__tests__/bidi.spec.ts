/// <reference types="node" />
/**
 * A user's value on a line with other text cannot reorder it, in Lab (bidi.ts) and on the service's
 * pages (hub_service/static/jobs.js): the same answers from both.
 */
import { readFileSync } from 'fs';
import { join } from 'path';
import { runInNewContext } from 'vm';

import * as lab from '../bidi';

/** The pages' helpers, as the browser runs them: a classic script that sets window.NotebookJobs. */
function pageHelpers(): any {
  const window: Record<string, any> = {};
  const document = { getElementById: () => ({ textContent: '{}' }), querySelectorAll: () => [] };  // (a page of no names)
  runInNewContext(readFileSync(join(__dirname, '../../../hub_service/static/jobs.js'), 'utf8'), { window, document });
  return window.NotebookJobs;
}

const page = pageHelpers();
const twins: [string, any][] = [
  ['Lab (bidi.ts)', lab],
  ['the pages (jobs.js)', { ...page, parameterLine: page.shortParameters }]
];
const [RLO, LRI, FSI, PDI] = ['\u202e', '\u2066', '\u2068', '\u2069'];

describe.each(twins)('%s', (_, bidi) => {
  it('leaves text that reorders nothing as it is', () => {
    expect(bidi.isolated('first try, 0.5')).toBe('first try, 0.5');
    expect(bidi.parameterLine({ lr: 0.1, label: 'a b' }, 60)).toBe('lr=0.1, label=a b');
  });

  it('isolates a value with an override or right-to-left letters, and keeps its end its own', () => {
    expect(bidi.isolated(`${RLO}gnp.exe`)).toBe(`${FSI}${RLO}gnp.exe${PDI}`);
    expect(bidi.isolated('שלום')).toBe(`${FSI}שלום${PDI}`);
    expect(bidi.isolated(`x${PDI}${RLO}y`)).toBe(`${FSI}x${RLO}y${PDI}`); // (its stray PDI would end ours)
    expect(bidi.isolated(`${LRI}x`)).toBe(`${FSI}${LRI}x${PDI}${PDI}`); // (an isolate it left open)
    expect(bidi.parameterLine({ label: `${RLO}evil`, n: 2 }, 60)).toBe(`label=${FSI}${RLO}evil${PDI}, n=2`);
  });

  it('cuts a long line with its isolate closed', () => {
    expect(bidi.parameterLine({ label: `${RLO}${'x'.repeat(20)}`, n: 2 }, 12)).toBe(`label=${FSI}${RLO}xxxx${PDI}…`);
    expect(bidi.parameterLine({ a: 1, label: 'x' }, 7)).toBe('a=1, l…');
    expect(bidi.parameterLine({ a: 1, b: 2 }, 8)).toBe('a=1, b=2');
  });

  it('shows JSON with its bidi controls as escapes', () => {
    expect(bidi.shownJSON({ label: `${RLO}x`, n: 'שלום' })).toBe('{"label":"\\u202ex","n":"שלום"}');
  });
});
