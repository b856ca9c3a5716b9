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
