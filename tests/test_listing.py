"""A page of jobs reads what the listing shows: no job's features (the demand model's inputs) are fetched
or decoded, and the page is the same as the jobs' own models."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from hub_service.store import Job, Store, listed_model, queries
from hub_service.store.queries import ListedJob, load_json
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


def test_a_listing_builds_no_statement_and_decodes_no_value_with_json_loads(tmp_path, monkeypatch):
    """A page's query is made once for each combination of filters and run with the values bound (building the
    select of 36 columns cost more than SQLite's run of it), its JSON values are read by json's C scanner alone
    (``json.loads`` adds two regular expressions' passes to each of a page's ~300 small values), and its rows
    are named tuples (a SQLAlchemy row looks each name up in its result's keys)."""
    loads, selects = [], []
    real_loads, real_select = json.loads, queries.select
    monkeypatch.setattr(json, "loads", lambda text, **kw: (loads.append(text), real_loads(text, **kw))[1])
    monkeypatch.setattr(queries, "select", lambda *a, **kw: (selects.append(a), real_select(*a, **kw))[1])
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    fill(store, [(user, 1000.0 + i, {"cpu": 0.25, "memory": 1 << 30, "timeout": 60})
                 for i in range(60) for user in ("ann", "ben")])
    store.list_jobs("ann", ["queued"], limit=50)  # (the statement of these filters, made once)
    loads.clear(), selects.clear()
    page, cursor = store.list_jobs("ann", ["queued"], limit=50)
    second, _ = store.list_jobs("ben", ["queued", "running"], limit=50)
    assert (len(page), len(second)) == (50, 50) and cursor
    assert selects == [] and loads == []
    assert isinstance(page[0], ListedJob) and page[0].allocated == {"cpu": 0.25, "memory": 1 << 30, "timeout": 60}
    assert [listed_model(row) for row in page] == [listed_model(store.get(row.id)) for row in page]
    rest, _ = store.list_jobs("ann", ["queued"], limit=50, cursor=cursor)
    assert [j.id for j in page + rest] == [j.id for j in store.list_jobs("ann", limit=200)[0]]
    store.close()


def test_stored_json_reads_as_json_loads_reads_it():
    """The store's deserializer gives what ``json.loads`` gives, for any text: the C scanner's value where the
    text is one value alone, ``json.loads`` itself (its value, or its error) otherwise."""
    for text in ('{"a": [1, 2.5, null, true, "é\\u00e9"], "b": {}}', "{}", "[]", "null", "NaN", "-Infinity",
                 '"text"', "12345678901234567890", ' {"a": 1} ', '{"a": 1}\n', "3"):
        assert repr(load_json(text)) == repr(json.loads(text)), text
    for bad in ("", "{", '{"a": 1} x', "[1,]"):
        with pytest.raises(json.JSONDecodeError):
            load_json(bad)
