"""The statuses and reasons are named once (hub_service.states); the parts agree with it."""

from hub_service.states import STATUSES, TERMINAL, Status
from hub_service.store.queries import TRANSITIONS


def test_the_store_moves_jobs_between_the_listed_statuses_only():
    named = set(TRANSITIONS) | set().union(*TRANSITIONS.values())
    assert named == set(STATUSES)
    assert not TERMINAL & set(TRANSITIONS)  # nothing follows an end


def test_a_status_is_its_string():
    assert Status.SUCCEEDED == "succeeded" and f"{Status.FAILED}" == "failed"
    assert "cancelled" in TERMINAL
