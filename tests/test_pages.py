"""The pages' contract with the Hub's own page.html, checked without a Hub running.

These fail loudly when a JupyterHub release moves its templates, makes page.html read a
name we do not give, or drops a block our templates fill: a page would otherwise render
with blanks or lose its content silently.
"""

import os
import re

import pytest
from jinja2 import meta

from hub_service.handlers.pages import (
    HUB_PAGE_BLOCKS, HUB_PAGE_NAMES, hub_page_context, hub_templates_dir, make_environment,
)


def hub_page_source() -> str:
    with open(os.path.join(hub_templates_dir(), "page.html")) as f:
        return f.read()


def test_the_hubs_templates_are_where_the_one_private_name_says():
    assert os.path.isfile(os.path.join(hub_templates_dir(), "page.html")), hub_templates_dir()


def test_page_html_reads_only_the_names_we_give_and_has_the_blocks_we_fill():
    env = make_environment()
    ast = env.parse(hub_page_source())
    # "caller": the modal macro's own; "service": the loop variable inside a scoped block
    read = meta.find_undeclared_variables(ast) - {"caller", "service"}
    assert read <= HUB_PAGE_NAMES, f"page.html now reads {sorted(read - HUB_PAGE_NAMES)}"
    blocks = set(re.findall(r"{%-?\s*block\s+(\w+)", hub_page_source()))
    assert HUB_PAGE_BLOCKS <= blocks, f"page.html lost blocks {sorted(HUB_PAGE_BLOCKS - blocks)}"
    context = hub_page_context(user_name="x", is_admin=False, hub_prefix="/hub/", service_name="s",
                               service_prefix="/services/s/", xsrf_token="t")
    assert set(context) == HUB_PAGE_NAMES


def test_jhdata_names_the_user_as_one_javascript_string():
    env = make_environment()
    name = 'al"ice\\'
    context = hub_page_context(user_name=name, is_admin=True, hub_prefix="/hub/", service_name="notebook-jobs",
                               service_prefix="/services/notebook-jobs/", xsrf_token="tok")
    html = env.get_template("admin.html").render(**context, service_prefix="/services/notebook-jobs/",
                                                  api_url="/services/notebook-jobs/api/", is_admin=True)
    assert 'user: "al\\"ice\\\\",' in html
    # the Hub's own menu items, then ours
    for href in ("/hub/home", "/hub/token", "/hub/admin", "/services/notebook-jobs/admin"):
        assert f'href="{href}"' in html, href


@pytest.mark.parametrize("page,select", [("home.html", "notify"), ("schedules.html", "schedule-notify")])
def test_the_mail_choice_says_when_the_hub_sends_no_mail(page, select):
    env = make_environment()
    context = hub_page_context(user_name="alice", is_admin=False, hub_prefix="/hub/", service_name="notebook-jobs",
                               service_prefix="/services/notebook-jobs/", xsrf_token="tok")
    for mail_on in (True, False):
        html = env.get_template(page).render(
            **context, service_prefix="/services/notebook-jobs/", api_url="/services/notebook-jobs/api/",
            is_admin=False, mail_on=mail_on, output_formats=("ipynb", "html", "md"),
            notify_choices=("never", "failure", "always"))
        tag = re.search(rf'<select [^>]*id="{select}"[^>]*>', html).group(0)
        assert ("disabled" in tag) is not mail_on, tag
        assert ("This Hub sends no mail" in html) is not mail_on
