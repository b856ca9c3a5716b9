"""A page of jobs reads what the listing shows: no job's features (the demand model's inputs) are fetched
or decoded, and the page is the same as the jobs' own models."""

from __future__ import annotations

from sqlalchemy import update

from hub_service.store import Job, Store, listed_model
from tests.test_dispatch import count_decodes, fill


def test_a_page_of_50_decodes_no_features_and_lists_each_job_as_its_model(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    fill(store, [("ann", 1000.0 + i, {"cpu": 0.25, "memory": 1 << 30, "timeout": 60}) for i in range(200)])
    with store.session() as s:
        s.execute(update(Job).values(features={"marker": "features", "imports": ["numpy"] * 100},
                                     parameters={"x": 1}))
        s.commit()
    decoded = count_decodes(store)
    page, cursor = store.list_jobs("ann", limit=50)
    assert len(page) == 50 and cursor
    assert not [text for text in decoded if "marker" in text]  # no features decoded
    assert len(decoded) <= 51 * 8  # the 8 JSON columns a job shows, of the page and the next page's first
    assert [listed_model(row) for row in page] == [listed_model(store.get(row.id)) for row in page]
    store.close()
