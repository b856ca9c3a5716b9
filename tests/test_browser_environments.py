"""The Hub's environments in a real Chromium on a real Hub: the Submit as job dialog in Lab and the service's own
form offer them, each one's packages a click away. The Hub runs the local executor, which has one environment
of its own: choosing another is refused beside the Environment field (as the service says, 422 at
/environment)."""

from __future__ import annotations


import pytest

from tests.browser import logged_in, shot
from tests.hubtest import SERVICE, Hub, environments_config
from tests.test_lab_ui import SHOTS, browser, field_error, lab, open_dialog  # noqa: F401 - fixtures

ENVIRONMENTS = [
    {"name": "python", "description": "The lean runner"},
    {"name": "tabular", "description": "The runner and tabulate", "image": "notebook-jobs-tabular:1"},
]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab-env-hub")
    h = Hub(tmp, extra_args=environments_config(tmp, ENVIRONMENTS))
    h.start()
    yield h
    h.stop()


def test_the_dialog_offers_the_environments_with_their_packages(hub, lab):
    page = lab
    dialog = open_dialog(page, hub, "greet.ipynb")
    select = dialog.locator('select[name="environment"]')
    page.wait_for_function("() => document.querySelectorAll('select[name=environment] option').length === 2")
    assert select.locator("option").all_inner_texts() == ["python — The lean runner",
                                                          "tabular — The runner and tabulate"]
    assert select.input_value() == "python"  # the Hub's default
    dialog.locator(".jp-NotebookJobs-packages summary").click()
    packages = dialog.locator(".jp-NotebookJobs-packageList")
    page.wait_for_function("() => /^papermill==/m.test(document.querySelector('.jp-NotebookJobs-packageList')"
                           ".textContent)", timeout=15_000)
    assert "nbformat==" in packages.inner_text()
    page.locator(".jp-Dialog-content").screenshot(path=str(SHOTS / "dialog-environments.png"))
    # another environment: this Hub's executor cannot run it, and the dry run says so beside the picker
    select.select_option("tabular")
    field_error(page, "environment", "runs every job in its own Python")
    page.locator(".jp-Dialog-content").screenshot(path=str(SHOTS / "dialog-environment-refused.png"))
    select.select_option("python")
    field_error(page, "environment", "")
    page.keyboard.press("Escape")


def test_the_service_form_offers_the_environments_with_their_packages(hub, browser):  # noqa: F811
    page, console = logged_in(hub, browser, "erin")
    page.goto(hub.url + SERVICE)
    select = page.locator("#environment")
    assert select.locator("option").all_inner_texts() == ["python — The lean runner",
                                                          "tabular — The runner and tabulate"]
    assert select.input_value() == "python"
    assert page.locator("#env-package-list").is_hidden()  # one click away
    page.click("#env-packages summary")
    page.wait_for_function("() => /^papermill==/m.test(document.getElementById('env-package-list').textContent)",
                           timeout=15_000)
    page.locator("#env-packages").scroll_into_view_if_needed()
    shot(page, "form-environments")
    assert not console.errors
