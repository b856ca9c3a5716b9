/**
 * The extension's strings go through JupyterLab's translator, in one domain. The functions
 * that word things take the app's bundle, and fall back to the strings as written (a spec,
 * a caller without the app at hand).
 */
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';

/** The gettext domain of the extension's strings. */
export const DOMAIN = 'jupyterlab_notebook_jobs';

/** The strings as written, in English. */
export const AS_WRITTEN: TranslationBundle = nullTranslator.load(DOMAIN);
