/**
 * Notebook Jobs in JupyterLab: the "Submit as job" command (notebook toolbar, file browser
 * context menu and palette, placed by the settings schema), the results panel in the right
 * sidebar and the sweeps' views (both restored with the layout), and a notification when a
 * job submitted here ends.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, IToolbarWidgetRegistry, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker, INotebookWidgetFactory, NotebookPanel, NotebookWidgetFactory } from '@jupyterlab/notebook';
import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { CommandToolbarButton } from '@jupyterlab/ui-components';
import type { CommandRegistry } from '@lumino/commands';

import { addJobCommands, addPanelCommand, addSubmitCommand, CommandIDs } from './commands';
import { JobsPanel } from './panel';
import { translateErrors } from './request';
import type { SweepView } from './sweep';
import { DOMAIN } from './translation';
import { isJobOutput, jobsIcon, READ_ONLY_KERNEL } from './views';

const PLUGIN_ID = 'jupyterlab-notebook-jobs:plugin';

/** The name of the toolbar item the settings schema declares in the notebook's toolbar. */
const TOOLBAR_ITEM = 'submit-as-job';

/**
 * A job's output is opened to read, however it is opened (Open in the panel, the file
 * browser, the layout Lab restores on reload): no kernel starts for it, and it stays
 * unmodified (a kernel writes its language_info, which marks the copy unsaved). The
 * preference is set as the widget is made, before its context starts a session.
 */
function openOutputsToRead(factory: NotebookWidgetFactory.IFactory): void {
  factory.widgetCreated.connect((_, widget) => {
    const session = widget.context.sessionContext;
    if (isJobOutput(widget.context.localPath ?? widget.context.path)) {
      session.kernelPreference = { ...session.kernelPreference, ...READ_ONLY_KERNEL };
    }
  });
}

/**
 * The notebook toolbar's "Submit as job" button, bound to its own notebook: it submits the
 * notebook whose toolbar holds it, whichever notebook is current when it is clicked.
 */
function addSubmitButton(registry: IToolbarWidgetRegistry, commands: CommandRegistry, trans: TranslationBundle): void {
  registry.addFactory<NotebookPanel>(
    'Notebook',
    TOOLBAR_ITEM,
    notebook =>
      new CommandToolbarButton({
        commands,
        id: CommandIDs.submit,
        args: { toolbar: true, panel: notebook.id },
        label: trans.__('Submit as job'),
        // as the toolbar's other buttons: pressed without taking the focus (the active cell keeps it)
        noFocusOnClick: notebook.toolbar?.noFocusOnClick ?? false
      })
  );
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Submit notebooks as Notebook Jobs and follow their results.',
  autoStart: true,
  requires: [IDocumentManager, INotebookTracker],
  optional: [ICommandPalette, IDefaultFileBrowser, INotebookWidgetFactory, ILayoutRestorer, ITranslator, IToolbarWidgetRegistry],
  activate: (
    app: JupyterFrontEnd,
    docManager: IDocumentManager,
    notebooks: INotebookTracker,
    palette: ICommandPalette | null,
    fileBrowser: IDefaultFileBrowser | null,
    notebookFactory: NotebookWidgetFactory.IFactory | null,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null,
    toolbarRegistry: IToolbarWidgetRegistry | null
  ) => {
    const trans = (translator ?? nullTranslator).load(DOMAIN);
    translateErrors(trans);
    if (notebookFactory) {
      openOutputsToRead(notebookFactory);
    }

    const panel = new JobsPanel({ commands: app.commands, trans });
    panel.title.icon = jobsIcon;
    app.shell.add(panel, 'right', { rank: 900 });
    // the sidebar comes back as it was (open or not) when the page is reloaded
    restorer?.add(panel, panel.id);

    const sweeps = new WidgetTracker<MainAreaWidget<SweepView>>({ namespace: 'notebook-jobs-sweep' });
    const ctx = { app, docManager, notebooks, fileBrowser, panel, sweeps, trans };
    addSubmitCommand(ctx);
    addPanelCommand(ctx);
    addJobCommands(ctx);
    // the sweeps' tabs come back too, each opened again by its id
    void restorer?.restore(sweeps, {
      command: CommandIDs.openSweep,
      args: widget => ({ id: widget.content.sweepId }),
      name: widget => widget.content.sweepId
    });
    if (toolbarRegistry) {
      addSubmitButton(toolbarRegistry, app.commands, trans);
    }
    if (palette) {
      const category = trans.__('Notebook Jobs');
      palette.addItem({ command: CommandIDs.submit, category });
      palette.addItem({ command: CommandIDs.panel, category });
    }
  }
};

export default plugin;
