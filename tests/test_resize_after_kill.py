"""A burst's OOM kill re-sizes its still-queued siblings: the planner finds them, the sizer raises them."""

import asyncio

from hub_service.offload import Offload
from hub_service.planning import DemandPlanner, siblings
from hub_service.sizing import Sizing
from hub_service.states import Status
from hub_service.store import Store

MB = 2**20
FEATURES = {"code_cells": 4, "source_bytes": 900, "imports": ["pandas"]}


def queued(store, user, input_hash, memory_mb, path=None, n=1000):
    return store.create_job(user=user, input_hash=input_hash, path=path, features=dict(FEATURES, params={"n": n}),
                            parameters={"n": n}, requested={}, predicted={},
                            allocated={"cpu": 1.0, "memory": memory_mb * MB, "timeout": 600.0, "basis": "cold-start"},
                            used={}, input_kind="ipynb", input_name="nb.ipynb")


def kill(store, job, memory_mb):
    store.transition(job.id, Status.RUNNING.value)
    return store.transition(job.id, Status.FAILED.value, error_reason="oom_killed",
                            used={"peak_memory": memory_mb * MB, "wall_seconds": 30.0, "cpu_seconds": 20.0})


def test_an_oom_kill_raises_the_queued_jobs_of_the_same_notebook_and_user_only(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    sizing = Sizing(offload=Offload(inline=True), model_dir=str(tmp_path / "models"),
                    memory_max=64 * 1024 * MB)
    planner = DemandPlanner(store=store, sizing=sizing)
    first = queued(store, "ann", "nb-a", 1024)
    burst = [queued(store, "ann", "nb-a", 1024, n=2000), queued(store, "ann", "other-hash", 1024, path=None)]
    same_path = queued(store, "ann", "edited", 1024, path="work/nb.ipynb")
    theirs = queued(store, "ben", "nb-a", 1024)
    killed = kill(store, first, 1024)
    waiting = [store.get(j.id) for j in (*burst, same_path, theirs)]
    assert [j.id for j in siblings(killed, waiting)] == [burst[0].id]
    # (the service reads the killed job's user's queue only)
    assert [j.id for j in store.jobs_with_status("queued", user="ben")] == [theirs.id]
    store.update(killed.id, path="work/nb.ipynb")
    killed = store.get(killed.id)
    assert {j.id for j in siblings(killed, waiting)} == {burst[0].id, same_path.id}

    sized = asyncio.run(planner.resize_after_kill(killed, waiting))
    assert set(sized) == {burst[0].id, same_path.id}
    for job_id, s in sized.items():
        # as the killed run's retry: at least twice what the burst was sized at
        assert s["allocated"]["memory"] >= 2 * 1024 * MB, s
        assert s["predicted"]["resized_after_kill"]["job"] == killed.id
        assert s["predicted"]["resized_after_kill"]["factor"] >= 2
        store.update(job_id, predicted=s["predicted"], allocated=s["allocated"])
    # a second kill from the first guess leaves the raised ones alone; a kill of a raised one does not
    second = kill(store, queued(store, "ann", "nb-a", 1024), 1024)
    waiting = [store.get(j.id) for j in waiting]
    assert siblings(second, waiting) == []
    store.update(burst[0].id, path="work/nb.ipynb")
    raised = kill(store, store.get(same_path.id), 4096)
    waiting = [store.get(j.id) for j in waiting]
    assert [j.id for j in siblings(raised, waiting)] == [burst[0].id]


def test_without_the_model_the_siblings_keep_what_they_have(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    sizing = Sizing(offload=Offload(inline=True), model_dir=str(tmp_path / "models"), use_model=False)
    planner = DemandPlanner(store=store, sizing=sizing)
    first, second = queued(store, "ann", "nb-a", 1024), queued(store, "ann", "nb-a", 1024)
    killed = kill(store, first, 1024)
    assert asyncio.run(planner.resize_after_kill(killed, [store.get(second.id)])) == {}


def test_the_admin_chooses_whether_a_memory_request_binds_or_is_advice(tmp_path):
    """Binding (the default): a request is the job's limit, and is recorded to be scored.
    Advisory: the request is one more policy on the board, which has no record of it yet,
    so the sizer's default serves and the request is kept beside it to be scored."""
    import pytest
    from traitlets import TraitError

    job = dict(FEATURES, params={"n": 1000}, user="ann", requested={"memory": 3000 * MB})
    common = {"offload": Offload(inline=True), "memory_max": 64 * 1024 * MB}
    binding = asyncio.run(Sizing(model_dir=str(tmp_path / "a"), **common).size(job, []))
    assert binding["allocated"]["memory"] == 3000 * MB
    assert binding["predicted"]["memory_policy"]["requests"] == "binding"
    advisory = asyncio.run(Sizing(model_dir=str(tmp_path / "b"), memory_requests="advisory", **common).size(job, []))
    record = advisory["predicted"]["memory_policy"]
    assert record["requests"] == "advisory" and record["candidates"]["requested"] == 3000 * MB
    # (no model yet: the rules, a notebook's first run at twice the admin's default)
    assert record["chosen"] == "rules" and advisory["allocated"]["memory"] == record["candidates"]["rules"] == 4096 * MB
    with pytest.raises(TraitError):
        Sizing(memory_requests="sometimes")
