"""The runner program: executes one notebook with papermill and narrates it as JSON lines.

This file runs wherever a job runs (inside the runner image, or under the local
executor) and so imports nothing from ``hub_service``: only the standard library and
papermill. Its stdout carries one JSON event per line and nothing else; everything the
notebook prints goes to stderr, which the executor keeps as the job's log.

Events::

    {"event": "started", "cells_total": N}
    {"event": "cell_started", "cell": i}            # i: index in the submitted notebook
    {"event": "cell_finished", "cell": i, "cells_done": k, "status": "ok"|"error"}
    {"event": "finished", "status": "succeeded"|"failed", "error": {...}}

Exit codes: 0 succeeded, 1 a cell raised, 2 bad input or papermill failure.
"""

import argparse
import json
import os
import sys
import time

# Events go to the original stdout; anything else that writes to sys.stdout (papermill,
# a library warming up) lands in the log instead of corrupting the event stream.
_EVENTS = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

INJECTED_TAG = "injected-parameters"


def emit(event, **fields):
    """Write one event line."""
    fields["event"] = event
    fields["time"] = round(time.time(), 3)
    _EVENTS.write(json.dumps(fields) + "\n")


def user_cell_index(nb, index):
    """Map an index of the executed notebook to the submitted one (papermill injects cells)."""
    if index is None:
        return None
    injected = sum(
        1 for cell in nb.cells[:index] if INJECTED_TAG in cell.get("metadata", {}).get("tags", [])
    )
    return index - injected


def is_user_code(cell):
    """A code cell of the submitted notebook (not one papermill injected)."""
    return cell.cell_type == "code" and INJECTED_TAG not in cell.get("metadata", {}).get("tags", [])


def make_engine():
    """A papermill engine that reports each cell's start and end as events."""
    from papermill.engines import NBClientEngine

    class EventEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            nb = nb_man.nb
            # The injected parameters cell is papermill's, not the user's: not counted.
            code_cells = [i for i, c in enumerate(nb.cells) if is_user_code(c)]
            emit("started", cells_total=len(code_cells))
            done = {"n": 0}
            start, complete, exception = nb_man.cell_start, nb_man.cell_complete, nb_man.cell_exception

            def cell_start(cell, cell_index=None, **kw):
                if is_user_code(cell):
                    emit("cell_started", cell=user_cell_index(nb, cell_index))
                return start(cell, cell_index, **kw)

            def cell_exception(cell, cell_index=None, **kw):
                EventEngine.failed_cell = user_cell_index(nb, cell_index)
                return exception(cell, cell_index, **kw)

            def cell_complete(cell, cell_index=None, **kw):
                result = complete(cell, cell_index, **kw)
                if is_user_code(cell):
                    done["n"] += 1
                    failed = cell.metadata.get("papermill", {}).get("exception", False)
                    emit(
                        "cell_finished",
                        cell=user_cell_index(nb, cell_index),
                        cells_done=done["n"],
                        status="error" if failed else "ok",
                    )
                return result

            nb_man.cell_start, nb_man.cell_complete, nb_man.cell_exception = cell_start, cell_complete, cell_exception
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    EventEngine.failed_cell = None
    return EventEngine


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--parameters", help="JSON file of parameters")
    parser.add_argument("--cwd", help="working directory of the kernel")
    parser.add_argument("--kernel", help="kernel name (default: the notebook's)")
    args = parser.parse_args(argv)

    parameters = {}
    if args.parameters and os.path.exists(args.parameters):
        with open(args.parameters) as f:
            parameters = json.load(f)
    if args.cwd:
        os.makedirs(args.cwd, exist_ok=True)

    import papermill
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillExecutionError

    engine = make_engine()
    papermill_engines.register("notebook-jobs-events", engine)
    try:
        papermill.execute_notebook(
            args.input,
            args.output,
            parameters=parameters,
            engine_name="notebook-jobs-events",
            kernel_name=args.kernel,
            cwd=args.cwd,
            progress_bar=False,
            stdout_file=sys.stderr,
            stderr_file=sys.stderr,
        )
    except PapermillExecutionError as e:
        message = f"{e.ename}: {e.evalue}"
        emit("finished", status="failed", error={"reason": "cell_error", "message": message, "cell": engine.failed_cell})
        return 1
    except Exception as e:  # papermill/kernel trouble: not the user's cell
        emit("finished", status="failed", error={"reason": "infrastructure", "message": f"{type(e).__name__}: {e}"})
        print(f"runner: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    emit("finished", status="succeeded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
