"""The replay's causes: what a user's succeeded jobs said about a job when it was submitted."""

from demand.replay.causes import Evidence


def _job(user="ann", cells=5, **params):
    return {"user": user, "code_cells": cells, "source_bytes": 100 * cells, "imports": ["pandas"], "params": params}


def test_causes_follow_the_users_succeeded_jobs():
    ev = Evidence()
    assert ev.cause(_job(rows=10)) == "new-user"
    ev.observe(_job(rows=10, model="small"))
    assert ev.cause(_job(cells=7, rows=10)) == "new-notebook"
    assert ev.cause(_job(rows=10, model="large")) == "new-variant"
    assert ev.cause(_job(rows=10, model="small")) == "re-run"
    assert ev.cause(_job(rows=1000, model="small")) == "beyond"
    ev.observe(_job(rows=1000, model="small"))
    assert ev.cause(_job(rows=100, model="small")) == "new-params"
    assert ev.cause(_job(user="bob", rows=10, model="small")) == "new-user"  # another user's runs say nothing


def test_an_edited_copy_of_a_notebook_is_not_new_to_its_user():
    """Two cells more and a little more source, the same imports and parameters: the
    sizer borrows the notebook's history (features.kinship), and its cause says so."""
    ev = Evidence()
    ev.observe(_job(cells=20, rows=10))
    edited = _job(cells=22, rows=10)
    assert ev.cause(edited) == "re-run"
    assert ev.cause(_job(cells=22, rows=1000)) == "beyond"
    # a notebook that doubled and tripled is no kin; nor is one with other parameters
    assert ev.cause(_job(cells=60, rows=10)) == "new-notebook"
    assert ev.cause(_job(cells=22, n=10)) == "new-notebook"
    # once the edited copy itself has run, its own runs say what it needs, not its kin's
    ev.observe(dict(edited, params={"rows": 50}))
    assert ev.cause(edited) == "new-params"


def test_a_text_value_shown_to_change_nothing_makes_no_new_variant():
    """Bob's runs show the ``region`` changes nothing (demand.variants.inert): Ann's first run
    in another region is a re-run, as the sizer masks it -- not a new variant."""
    ev = Evidence()
    for i in range(32):
        region = ("north", "south")[i % 2]
        ev.observe(dict(_job(user="bob", rows=10, region=region), used={"peak_memory": (1000 + i % 3) * 2**20}))
    ev.observe(dict(_job(rows=10, region="north"), used={"peak_memory": 500 * 2**20}))
    assert ev.inert  # (read at the doubling of the succeeded jobs)
    assert ev.cause(_job(rows=10, region="south")) == "re-run"
    assert ev.cause(_job(rows=10, region="east")) == "new-variant"  # a value nobody showed alike
