"""A job's metrics charted on its page, in a real browser against the real Hub: filled from
GET …/metrics, then live from the job's event stream; readable in both themes; 10,000 points
drawn from two vertices a pixel column; a long last value inside the drawing, the values read
out from the keyboard, and a redraw at a new width.

Screenshots land in test-output/pages/ (docs/metrics-*.png are copies of them).
"""

import json
import math
import re
import time

import pytest

from tests.browser import SHOTS, browser, logged_in, shot  # noqa: F401
from tests.hubtest import SERVICE, make_notebook
from tests.test_browser_admin import TEXT_CONTRAST_JS

LOSS = 'figure[data-metric="loss"]'
#: each metric's line colour, and its WCAG contrast against the page
LINE_CONTRAST_JS = """(names) => {
  const lum = (css) => css.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); })
    .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  const page = lum(getComputedStyle(document.body).backgroundColor);
  return Object.fromEntries(names.map((name) => {
    const color = getComputedStyle(document.querySelector(`figure[data-metric="${name}"] polyline`)).stroke;
    const line = lum(color);
    return [name, {color, ratio: (Math.max(line, page) + 0.05) / (Math.min(line, page) + 0.05)}];
  }));
}"""


#: the texts of the charts matching a selector that are cut at their drawing's edge (the readout, hidden, aside)
CLIPPED_JS = """(sel) => [...document.querySelectorAll(sel)].flatMap((svg) => {
  const box = svg.getBoundingClientRect();
  return [...svg.querySelectorAll('text')].filter((t) => !t.closest('.chart-hover')).filter((t) => {
    const r = t.getBoundingClientRect(); return r.right > box.right + 0.5 || r.left < box.left - 0.5; })
    .map((t) => t.textContent); })"""


def gated_notebook():
    """Five reports each of loss (the helper) and accuracy (a PROGRESS: line); then, once the test
    opens ``gate + '.1'``, one more loss; then it waits for ``gate + '.2'`` to end."""
    wait = "import pathlib, time\nwhile not pathlib.Path(gate + '{}').exists():\n    time.sleep(0.1)"
    return make_notebook(
        "import json\nfrom notebook_jobs import report\nfor step in range(5):\n"
        "    report(loss=1 / (step + 1), step=step)\n"
        "    print('PROGRESS: ' + json.dumps({'accuracy': 0.5 + step / 10}))",
        wait.format(".1") + "\nreport(loss=0.05, step=5)",
        wait.format(".2"),
        parameters="gate = ''")


def reported(user, job_id):
    """The job's stored points by metric, from the API."""
    return {s["name"]: s["points"] for s in user.get(f"jobs/{job_id}/metrics").json()["series"]}


def view_width(page, metric):
    """The width of a metric chart's drawing (its box's, when it was drawn)."""
    return float(page.locator(f'figure[data-metric="{metric}"] svg').get_attribute("viewBox").split()[2])


def plot_edges(page, metric):
    """The x of the plot's left and right edges (its x axis), in the drawing's units."""
    axis = page.locator(f'figure[data-metric="{metric}"] .chart-x line').first
    return float(axis.get_attribute("x1")), float(axis.get_attribute("x2"))


def vertices(page, metric):
    """The (x, y) vertices of a metric's line, as drawn."""
    points = page.locator(f'figure[data-metric="{metric}"] .chart-series polyline').get_attribute("points")
    return [tuple(map(float, p.split(","))) for p in points.split()]


def test_the_job_page_charts_each_metric_and_adds_points_live_from_the_stream(hub, browser, tmp_path):
    mira = hub.user("mira")
    gate = str(tmp_path / "gate")
    job = mira.submit(gated_notebook(), name="charted", parameters={"gate": gate})
    deadline = time.monotonic() + 90
    while len(reported(mira, job["id"]).get("loss", [])) < 5:  # the first five, stored before the page opens
        assert time.monotonic() < deadline, reported(mira, job["id"])
        time.sleep(0.2)
    page, console = logged_in(hub, browser, "mira")
    page.goto(hub.url + SERVICE + "jobs/" + job["id"])
    # what was stored before the page opened: from GET …/metrics, one chart per metric
    page.locator(f'{LOSS} g[data-points="5"]').wait_for(timeout=90_000)
    page.locator('figure[data-metric="accuracy"] g[data-points="5"]').wait_for()
    assert page.locator("#job-status").inner_text() == "running"
    chart = page.locator(LOSS)
    assert chart.locator(".chart-title").text_content() == "loss"
    assert chart.locator(".chart-label").all_text_contents() == ["loss", "step"]  # y, then x
    y_ticks = [float(t) for t in chart.locator(".chart-y .chart-tick").all_text_contents()]
    assert len(y_ticks) >= 3 and y_ticks == sorted(y_ticks) and y_ticks[0] <= 0.2 and y_ticks[-1] >= 1, y_ticks
    assert chart.locator(".chart-x .chart-tick").all_text_contents()[:2] == ["0", "1"]
    drawn = vertices(page, "loss")
    assert len(drawn) == 5 and drawn == sorted(drawn)  # one vertex a step, left to right
    assert [y for _, y in drawn] == sorted(y for _, y in drawn)  # loss falls: the line goes down the page
    assert chart.locator(".chart-last").text_content() == "0.2"
    assert page.get_attribute("#job-page", "data-streamed-points") is None  # nothing came live yet
    # the pointer over step 3 reads its value out
    box = chart.locator("svg").bounding_box()
    x3 = drawn[3][0] * box["width"] / view_width(page, "loss")
    page.mouse.move(box["x"] + x3, box["y"] + box["height"] / 2)
    assert chart.locator(".chart-readout").text_content() == "step 3: 0.25"
    page.mouse.move(0, 0)

    # a point reported now arrives over the event stream, while the job still runs, without a reload
    page.evaluate("window.__sameDocument = true")
    (tmp_path / "gate.1").touch()
    page.locator(f'{LOSS} g[data-points="6"]').wait_for(timeout=30_000)
    assert page.get_attribute("#job-page", "data-streamed-points") == "1"
    assert page.locator("#job-status").inner_text() == "running"
    assert mira.get(f"jobs/{job['id']}").json()["status"] == "running"
    assert len(vertices(page, "loss")) == 6 and chart.locator(".chart-last").text_content() == "0.05"
    (tmp_path / "gate.2").touch()
    page.wait_for_function("document.getElementById('job-status').textContent === 'succeeded'", timeout=60_000)
    assert page.evaluate("window.__sameDocument") is True
    # the run's metrics.json, beside its output notebook: the final values and each series
    kept = json.loads((hub.service_data / "jobs" / job["id"] / "metrics.json").read_text())
    ended = mira.get(f"jobs/{job['id']}").json()
    assert kept["final"] == ended["metrics"] == {"loss": 0.05, "accuracy": pytest.approx(0.9)}
    assert [(s["name"], len(s["points"])) for s in kept["series"]] == [("accuracy", 5), ("loss", 6)]
    assert kept["points"] == 11 and kept["capped"] is False
    # and the page's download of them
    with page.expect_download() as download:
        page.click("#job-metrics-download")
    saved = json.loads(open(download.value.path()).read())
    assert download.value.suggested_filename == job["id"][:8] + "-metrics.json"
    assert saved["final"] == ended["metrics"] and {s["name"] for s in saved["series"]} == {"loss", "accuracy"}
    # a reload of the ended job draws the same from the stored series
    page.reload()
    page.locator(f'{LOSS} g[data-points="6"]').wait_for()
    assert len(vertices(page, "loss")) == 6
    assert console.errors == [], "\n".join(console.errors)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_metric_charts_read_in_both_themes(hub, browser, theme):
    nell = hub.user(f"nell-{theme}")
    source = ("from notebook_jobs import report\nimport math\n"
              "for step in range(60):\n"
              "    report(loss=2.5 * math.exp(-step / 15) + 0.1, accuracy=1 - 0.5 * math.exp(-step / 10), step=step)")
    job = nell.wait(nell.submit(make_notebook(source), name="training")["id"])
    page, console = logged_in(hub, browser, nell.name, color_scheme=theme)
    page.goto(hub.url + SERVICE + "jobs/" + job["id"])
    assert page.evaluate("document.documentElement.getAttribute('data-bs-theme')") == theme
    page.locator(f'{LOSS} g[data-points="60"]').wait_for()
    contrast = page.evaluate(TEXT_CONTRAST_JS, [".chart-title", ".chart-tick", ".chart-label", ".chart-last"])
    low = {k: v for k, v in contrast.items() if v < 4.5}  # WCAG AA, normal text
    assert not low, low
    # each line stands out from the page (WCAG's 3:1 for graphics), in a colour of its own
    lines = page.evaluate(LINE_CONTRAST_JS, ["loss", "accuracy"])
    assert all(c["ratio"] >= 3 for c in lines.values()) and lines["loss"]["color"] != lines["accuracy"]["color"], lines
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#job-metrics-section").screenshot(path=str(SHOTS / f"metrics-{theme}.png"))
    assert console.errors == [], "\n".join(console.errors)


def test_ten_thousand_points_are_drawn_from_two_vertices_a_pixel_column(hub, browser):
    olga = hub.user("olga")
    # a slow wave with one spike, as many points as a job may send: the spike must survive the downsampling
    points, spike = 10_000, 7777
    source = ("from notebook_jobs import report\nimport math\n"
              f"for step in range({points}):\n"
              f"    report(loss=math.sin(step / 700) + (5 if step == {spike} else 0), step=step)")
    job = olga.wait(olga.submit(make_notebook(source), name="many", timeout=600)["id"], timeout=600)
    assert job["status"] == "succeeded" and job["metrics"]["loss"] == pytest.approx(math.sin((points - 1) / 700))
    page, console = logged_in(hub, browser, "olga")
    page.goto(hub.url + SERVICE + "jobs/" + job["id"])
    page.locator(f'{LOSS} g[data-points="{points}"]').wait_for(timeout=30_000)
    drawn = vertices(page, "loss")
    left, right = plot_edges(page, "loss")
    plot_width = right - left
    assert plot_width <= len(drawn) <= 2 * (plot_width + 1) < points, len(drawn)
    top = min(y for _, y in drawn)
    peak = [x for x, y in drawn if y == top]
    assert len(peak) == 1 and peak[0] == pytest.approx(left + spike / (points - 1) * plot_width, abs=1)  # where it was
    assert page.locator(f"{LOSS} .chart-last").text_content() == f"{math.sin((points - 1) / 700):.5g}"
    # the same function on points made here: each pixel column keeps its lowest and highest, in x order
    data = [{"x": i, "y": -i if i % 7 == 3 else i % 10} for i in range(5000)]
    kept = page.evaluate("(points) => NJChart.downsample(points, (x) => x / 50).map((p) => p.x)", data)
    expected = []
    for column in range(100):
        inside = data[50 * column:50 * column + 50]
        low = min(inside, key=lambda p: p["y"])["x"]  # (min and max take the first of equals, as the chart does)
        high = max(inside, key=lambda p: p["y"])["x"]
        expected += sorted({low, high})
    assert kept == expected
    shot(page, "metrics-many")
    assert console.errors == [], "\n".join(console.errors)
    assert not re.search(r"capped", olga.get(f"jobs/{job['id']}/logs").text)


def test_a_long_last_value_fits_the_keys_read_the_values_out_and_a_new_width_redraws(hub, browser):
    """The last value is never cut at the chart's right edge (its margin is as wide as the widest);
    the arrow keys walk the readout through the steps; a window resized redraws the charts at their
    new width. In the light and the dark theme (the readout's screenshots, metrics-readout-*.png)."""
    pia = hub.user("pia")
    source = ("from notebook_jobs import report\n"
              "for step in range(5):\n"
              "    report(loss=(4 - step) / 10 - 0.0012346, step=step)")
    job = pia.wait(pia.submit(make_notebook(source), name="long-values")["id"])
    assert job["status"] == "succeeded"
    for theme in ("light", "dark"):
        page, console = logged_in(hub, browser, "pia", color_scheme=theme)
        page.goto(hub.url + SERVICE + "jobs/" + job["id"])
        chart = page.locator(LOSS)
        chart.locator('g[data-points="5"]').wait_for()
        assert chart.locator(".chart-last").text_content() == "-0.0012346"
        assert page.evaluate(CLIPPED_JS, f"{LOSS} svg") == []
        # the figure takes the focus; the arrows, Home and End move the readout, Escape hides it
        chart.focus()
        page.keyboard.press("End")
        assert chart.get_attribute("aria-description") == "step 4: -0.0012346"
        assert chart.locator(".chart-readout").text_content() == "step 4: -0.0012346"
        page.keyboard.press("ArrowLeft")
        assert chart.get_attribute("aria-description") == "step 3: 0.098765"
        contrast = page.evaluate(TEXT_CONTRAST_JS, [".chart-readout"])
        assert contrast[".chart-readout"] >= 4.5, contrast
        page.locator("#job-metrics-section").screenshot(path=str(SHOTS / f"metrics-readout-{theme}.png"))
        page.keyboard.press("Escape")
        assert chart.get_attribute("aria-description") is None
        assert chart.locator(".chart-hover").get_attribute("visibility") == "hidden"
        # a narrower window: drawn again at the figure's new width, the last value still inside
        before = view_width(page, "loss")
        page.set_viewport_size({"width": 700, "height": 900})
        page.wait_for_function("""([sel, before]) => { const f = document.querySelector(sel);
            const w = +f.querySelector('svg').getAttribute('viewBox').split(' ')[2];
            return w !== before && w === f.clientWidth; }""", arg=[LOSS, before])
        assert page.evaluate(CLIPPED_JS, f"{LOSS} svg") == []
        assert console.errors == [], "\n".join(console.errors)
        page.close()


#: a metric's name longer than the side of its chart
LONG_NAME = "validation_accuracy_of_the_held_out_set_top5_per_class_macro"
#: where a chart's y label, its drawing and its readout's words and backdrop are on the screen
GEOMETRY_JS = """(fig) => {
  const rect = (el) => { const r = el.getBoundingClientRect(); return {top: r.top, bottom: r.bottom, left: r.left,
                                                                       right: r.right}; };
  const label = fig.querySelector('.chart-y .chart-label'), back = fig.querySelector('.chart-readout-back');
  return {svg: rect(fig.querySelector('svg')), label: rect(label), shown: label.firstChild.data,
          title: label.querySelector('title')?.textContent, words: rect(fig.querySelector('.chart-readout')),
          back: rect(back), fill: getComputedStyle(back).fill, page: getComputedStyle(document.body).backgroundColor};
}"""


def test_a_long_metric_name_is_cut_to_its_axis_with_the_whole_name_in_its_tooltip_and_the_readout_has_a_backdrop(
        hub, browser):  # noqa: F811
    """The y axis's name is turned up the chart's side: a name longer than that side is cut with "…" (never cut
    at the drawing's edge), the whole of it in the label's tooltip. The values read out sit on a backdrop of the
    page's own background, in the light and the dark theme."""
    quinn = hub.user("quinn")
    source = f"from notebook_jobs import report\nfor step in range(3):\n    report(step=step, **{{{LONG_NAME!r}: step}})"
    job = quinn.wait(quinn.submit(make_notebook(source), name="long-name")["id"])
    assert job["status"] == "succeeded"
    for theme in ("light", "dark"):
        page, console = logged_in(hub, browser, "quinn", color_scheme=theme)
        page.goto(hub.url + SERVICE + "jobs/" + job["id"])
        chart = page.locator(f'figure[data-metric="{LONG_NAME}"]')
        chart.locator('g[data-points="3"]').wait_for()
        chart.focus()
        page.keyboard.press("End")
        at = chart.evaluate(GEOMETRY_JS)
        assert at["shown"].endswith("…") and LONG_NAME.startswith(at["shown"][:-1]) and len(at["shown"]) > 20, at
        assert at["title"] == LONG_NAME
        assert at["svg"]["top"] <= at["label"]["top"] and at["label"]["bottom"] <= at["svg"]["bottom"], at
        assert at["fill"] == at["page"], at  # (the page's own background, in either theme)
        words, back = at["words"], at["back"]
        assert back["left"] < words["left"] and back["right"] > words["right"], at
        assert back["top"] < words["top"] and back["bottom"] > words["bottom"], at
        assert console.errors == [], "\n".join(console.errors)
        page.close()
