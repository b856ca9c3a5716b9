/**
 * The extension's command ids. The ones on a job take `{id, name}` (the job's id, and its
 * name for titles); `submit` takes a workspace `path`, a notebook `panel` id (its toolbar's
 * button) or `fromBrowser` (the file browser's selection).
 */
export namespace CommandIDs {
  export const submit = 'notebook-jobs:submit';
  export const panel = 'notebook-jobs:open-panel';
  export const openOutput = 'notebook-jobs:open-output';
  export const showHtml = 'notebook-jobs:show-html';
  export const showLog = 'notebook-jobs:show-log';
  export const download = 'notebook-jobs:download';
  export const cancel = 'notebook-jobs:cancel';
  export const rerun = 'notebook-jobs:rerun';
  export const remove = 'notebook-jobs:delete';
  /** A sweep's view; takes the sweep's `id`. */
  export const openSweep = 'notebook-jobs:open-sweep';
}
