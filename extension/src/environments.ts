/**
 * The environments a job may run in (the service's `GET /environments`): each with its
 * description and the packages its image holds, and the picker the Submit dialog offers.
 */
import type { TranslationBundle } from '@jupyterlab/translation';

import { h } from './dom';
import { requestAPI } from './request';

declare module './request' {
  interface ISubmission {
    /** The environment to run in (absent: the Hub's default). */
    environment?: string;
  }
}

export interface IEnvironment {
  name: string;
  description: string;
  gpu: boolean;
  packages: { name: string; version: string }[];
}

export interface IEnvironments {
  default: string;
  environments: IEnvironment[];
}

/** The service's environments (asked once per dialog: the packages are read from each image once). */
export function listEnvironments(): Promise<IEnvironments> {
  return requestAPI<IEnvironments>('environments');
}

/**
 * A select of the environments (the default chosen, or `chosen`), with the packages of the
 * selected one a click away in a <details>; `onChange` hears a new choice. Filled when the
 * service answers; until then (and when it cannot say) it offers the default only.
 */
export function environmentPicker(
  trans: TranslationBundle,
  chosen: string | undefined,
  onChange: () => void
): { select: HTMLSelectElement; packages: HTMLElement } {
  const select = h('select', { name: 'environment', 'aria-label': trans.__('Environment') }) as HTMLSelectElement;
  select.append(h('option', { value: chosen ?? '' }, chosen ?? trans.__('the Hub\'s default')));
  const list = h('pre', { className: 'jp-NotebookJobs-packageList', style: 'max-height: 12em; overflow: auto; margin: 0' }, trans.__('loading…'));
  const packages = h('details', { className: 'jp-NotebookJobs-packages' }, h('summary', {}, trans.__('Packages in this environment')), list);
  let listing: IEnvironments | null = null;
  const show = () => {
    const env = listing?.environments.find(e => e.name === select.value);
    list.textContent = env ? env.packages.map(p => `${p.name}==${p.version}`).join('\n') : trans.__('loading…');
  };
  select.addEventListener('change', () => {
    show();
    onChange();
  });
  listEnvironments()
    .then(answer => {
      listing = answer;
      const want = chosen ?? answer.default;
      select.replaceChildren(
        ...answer.environments.map(e => h('option', { value: e.name }, e.description ? `${e.name} — ${e.description}` : e.name))
      );
      select.value = answer.environments.some(e => e.name === want) ? want : answer.default;
      show();
    })
    .catch(() => {
      list.textContent = trans.__('The service does not list its environments.');
    });
  return { select, packages };
}
