"""Benchmark: JupyterLab's "Submit as job", from the click on Submit to the panel showing
``succeeded``, against bare papermill on the same 2-cell notebook, in one run.

  (a) bare `papermill` in the lean runner venv (.venv-runner), as bench.bench_service runs it;
  (b) a real browser (Chromium) on a real Hub + proxy + service + single-user JupyterLab
      with the extension: the dialog's Submit button clicked -> the job's row in the
      panel says succeeded (the panel follows the job by server-sent events through the
      server extension). By default the demo's executor: docker with two warm containers.

Also printed: the toolbar click -> the dialog showing the service's sizing (its dry run).
Prints medians of ``--repeat`` runs, interleaved, and the ratio b/a.

    .venv/bin/python -m bench.bench_lab [--repeat 5] [--executor docker|local]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import time

from bench.bench_service import bare_papermill, two_cell_notebook
from tests.hubtest import Hub

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
SUBMIT = '.jp-NotebookPanel-toolbar [data-command="notebook-jobs:submit"]'


def through_lab(page) -> tuple[float, float]:
    """(toolbar click -> sizing shown, Submit click -> row succeeded), in seconds."""
    started = time.perf_counter()
    page.locator(SUBMIT).locator("visible=true").click()
    page.locator(".jp-Dialog .jp-NotebookJobs-proposal").wait_for(timeout=60_000)
    dialog = time.perf_counter() - started
    page.locator('.jp-Dialog [name="param-x"]').fill("2")
    before = page.locator("#notebook-jobs-panel").get_attribute("data-last-submitted")
    started = time.perf_counter()
    page.locator(".jp-Dialog-button.jp-mod-accept").click()
    page.wait_for_function(
        """(before) => {
            const id = document.getElementById('notebook-jobs-panel').dataset.lastSubmitted;
            return id && id !== before &&
              document.querySelector(`.jp-NotebookJobs-job[data-job-id="${id}"]`)?.dataset.status === 'succeeded';
        }""",
        arg=before, timeout=180_000, polling="raf",
    )
    return dialog, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--executor", default="docker", choices=["local", "docker"])
    parser.add_argument("--service-args", default="--DockerExecutor.warm_pool=2",
                        help="extra service options (default: the demo's two warm containers)")
    args = parser.parse_args()
    tmp, nb, nb_path = two_cell_notebook("nbjobs-bench-lab-")
    from playwright.sync_api import sync_playwright

    workspace = tmp / "data" / "users" / "bench"
    workspace.mkdir(parents=True)
    (workspace / "two_cells.ipynb").write_text(json.dumps(nb))

    hub = Hub(tmp, executor=args.executor, extra_args=f"--DockerExecutor.instance=benchlab {args.service_args}")
    hub.start(timeout=120)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(hub.url + "/hub/login")
            page.fill("#username_input", "bench")
            page.fill("#password_input", "x")
            page.click("#login_submit")
            page.wait_for_url(re.compile(r".*/user/[^/]+/lab.*"), timeout=180_000)
            page.goto(f"{hub.url}/user/bench/lab/tree/two_cells.ipynb")
            page.locator(SUBMIT).locator("visible=true").wait_for(timeout=120_000)
            bare_papermill(nb_path, tmp / "warm.ipynb")  # warm caches on both sides
            through_lab(page)
            bare, lab, dialog = [], [], []
            for _ in range(args.repeat):  # interleaved, so drift hits both alike
                bare.append(bare_papermill(nb_path, tmp / "out.ipynb"))
                d, t = through_lab(page)
                dialog.append(d)
                lab.append(t)
            browser.close()
        a, b = statistics.median(bare), statistics.median(lab)
        print(f"(a) bare papermill, lean venv             median {a:.3f} s  {['%.2f' % x for x in bare]}")
        print(f"(b) Lab: Submit click -> panel succeeded  median {b:.3f} s  {['%.2f' % x for x in lab]}")
        print(f"ratio b/a = {b / a:.2f}   ({args.executor} executor, {args.service_args or 'no extra options'})")
        print(f"toolbar click -> dialog with the service's sizing: median {statistics.median(dialog):.3f} s")
    finally:
        hub.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
