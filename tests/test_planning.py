"""The demand model's upkeep stays off the event loop: a job's success neither counts the jobs nor reads the
history there (a drain ends a job a second, and the history is up to ``retrain_history`` rows)."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import event

from hub_service import offload
from hub_service.offload import Offload
from hub_service.planning import DemandPlanner
from hub_service.sizing import Sizing
from hub_service.store import Job, Store
from tests.test_dispatch import fill


async def test_an_early_retraining_counts_and_reads_the_history_in_a_thread(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    fill(store, [("ann", 1000.0 + i, {"cpu": 0.25, "memory": 1 << 30, "timeout": 60}) for i in range(12)])
    with store.session() as s:  # twelve succeeded: past the first bundle's threshold, so one is trained now
        s.execute(Job.__table__.update().values(status="succeeded", features={"code_cells": 1, "source_bytes": 9},
                                               used={"peak_memory": 100 << 20, "cpu_seconds": 0.5,
                                                     "wall_seconds": 1.0}))
        s.commit()
    planner = DemandPlanner(store=store, sizing=Sizing(offload=Offload(inline=True),
                                                       model_dir=str(tmp_path / "models")))
    loop_thread, reads = threading.get_ident(), []
    event.listen(store.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *_: reads.append((threading.get_ident(), statement)))
    planner.job_succeeded()
    while planner._background:
        await asyncio.gather(*list(planner._background))
    assert (await planner.sizing.model_call(offload.info))["version"]  # (it retrained)
    jobs = [(thread, statement) for thread, statement in reads if "FROM jobs" in statement]
    assert any("count(" in statement for _, statement in jobs)  # the succeeded jobs counted,
    assert any("ORDER BY jobs.created_ts DESC" in statement for _, statement in jobs)  # the history read,
    assert all(thread != loop_thread for thread, _ in jobs), jobs  # both in a thread
    store.close()
