"""A job's metrics charted in Lab's Notebook jobs panel: filled from GET …/metrics through the
server extension, then live from the event stream the panel follows the job on; drawn again
when the panel is resized; in the light and the dark theme (screenshots in test-output/lab/,
copied to docs/lab-metrics*.png)."""

import re
import time

from tests.test_browser_metrics import gated_notebook, reported
from tests.test_lab_ui import SHOTS, USER, browser, lab, open_panel, set_theme, wait_status  # noqa: F401


def chart(row, metric):
    return row.locator(f'.jp-NotebookJobs-chart[data-metric="{metric}"]')


def contrast(fg: str, bg: str) -> float:
    """WCAG contrast of a CSS colour (its alpha over ``bg``) against ``bg``."""
    def rgba(css):
        v = [float(n) for n in re.findall(r"[\d.]+", css)]
        return v if len(v) == 4 else v + [1.0]

    def lum(rgb):
        lin = [c / 255 / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    f, b = rgba(fg), rgba(bg)
    seen = [f[3] * f[i] + (1 - f[3]) * b[i] for i in range(3)]
    hi, lo = sorted([lum(seen), lum(b[:3])], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def assert_readable(page):
    """The loss chart's texts (WCAG AA, 4.5) and line (3, for graphics) against the panel, in the theme shown."""
    colours = page.evaluate("""() => {
        const c = (sel) => getComputedStyle(document.querySelector(
            `#notebook-jobs-panel .jp-NotebookJobs-chart[data-metric="loss"] ${sel}`));
        return {tick: c('.chart-tick').fill, title: c('.chart-title').fill, last: c('.chart-last').fill,
                label: c('.chart-label').fill, line: c('polyline').stroke,
                panel: getComputedStyle(document.getElementById('notebook-jobs-panel')).backgroundColor};
    }""")
    ratios = {k: contrast(v, colours["panel"]) for k, v in colours.items() if k != "panel"}
    low = {k: r for k, r in ratios.items() if r < (3 if k == "line" else 4.5)}
    assert not low, (low, colours)


def test_the_panel_charts_a_jobs_metrics_and_adds_points_live_from_its_stream(hub, lab, tmp_path):
    page = lab
    lena = hub.user(USER)
    gate = str(tmp_path / "gate")
    job = lena.submit(gated_notebook(), name="lab-charted", parameters={"gate": gate})
    deadline = time.monotonic() + 90
    while len(reported(lena, job["id"]).get("loss", [])) < 5:  # the first five, stored before the panel opens
        assert time.monotonic() < deadline, reported(lena, job["id"])
        time.sleep(0.2)
    open_panel(page, hub)
    row = page.locator(f'.jp-NotebookJobs-job[data-job-id="{job["id"]}"]')
    loss = chart(row, "loss")
    loss.locator('g[data-points="5"]').wait_for(timeout=60_000)
    chart(row, "accuracy").locator('g[data-points="5"]').wait_for()
    assert row.get_attribute("data-status") == "running"
    assert loss.locator(".chart-title").text_content() == "loss"
    assert loss.locator(".chart-label").all_text_contents() == ["loss", "step"]  # y, then x
    ticks = [float(t) for t in loss.locator(".chart-y .chart-tick").all_text_contents()]
    assert len(ticks) >= 3 and ticks == sorted(ticks), ticks
    assert len(loss.locator("polyline").get_attribute("points").split()) == 5
    colours = page.evaluate("""(id) => ['loss', 'accuracy'].map((m) => getComputedStyle(document.querySelector(
        `[data-job-id="${id}"] .jp-NotebookJobs-chart[data-metric="${m}"] polyline`)).stroke)""", job["id"])
    assert colours[0] != colours[1], colours  # each metric a colour of its own
    assert loss.locator(".chart-last").text_content() == "0.2"
    metrics = row.locator(".jp-NotebookJobs-metrics")
    assert metrics.get_attribute("data-stream-points") == "0"  # all five from GET …/metrics
    # a point reported now comes over the panel's event stream, while the job runs
    (tmp_path / "gate.1").touch()
    loss.locator('g[data-points="6"]').wait_for(timeout=30_000)
    assert metrics.get_attribute("data-stream-points") == "1"
    assert row.get_attribute("data-status") == "running" and row.get_attribute("data-updates") == "events"
    assert len(loss.locator("polyline").get_attribute("points").split()) == 6
    assert loss.locator(".chart-last").text_content() == "0.05"
    assert_readable(page)
    page.wait_for_timeout(300)
    metrics.screenshot(path=str(SHOTS / "lab-metrics.png"))
    # the panel made wider (its splitter dragged): the charts are drawn again at their new width
    before = float(loss.locator("svg").get_attribute("viewBox").split()[2])
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:not(.lm-mod-hidden)").last
    grip = handle.bounding_box()
    page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
    page.mouse.down()
    page.mouse.move(grip["x"] - 150, grip["y"] + grip["height"] / 2, steps=10)
    page.mouse.up()
    page.wait_for_function("""([id, before]) => {
        const f = document.querySelector(`[data-job-id="${id}"] .jp-NotebookJobs-chart[data-metric="loss"]`);
        const w = +f.querySelector('svg').getAttribute('viewBox').split(' ')[2];
        return w > before + 100 && w === f.clientWidth; }""", arg=[job["id"], before])
    (tmp_path / "gate.2").touch()
    row = wait_status(page, job["id"], "succeeded")
    # the charts outlive the row's rebuild when the job ended (the same nodes, not drawn anew from nothing)
    assert len(chart(row, "loss").locator("polyline").get_attribute("points").split()) == 6
    set_theme(page, "JupyterLab Dark")
    try:
        open_panel(page, hub)
        dark = page.locator(f'.jp-NotebookJobs-job[data-job-id="{job["id"]}"] .jp-NotebookJobs-metrics')
        chart(dark, "loss").locator('g[data-points="6"]').wait_for(timeout=30_000)
        assert_readable(page)
        page.wait_for_timeout(300)
        dark.screenshot(path=str(SHOTS / "lab-metrics-dark.png"))
    finally:
        set_theme(page, "JupyterLab Light")
