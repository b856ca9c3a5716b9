"""Schedules without HTTP: fire times across daylight-saving changes, what a cron may be, the store's fire bookkeeping.

The real-Hub behaviour (firing, overlap, missed runs across a restart, the API) is in
tests/test_schedules_hub.py.
"""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from hub_service.intake import IntakeError
from hub_service.outputs import Artifacts
from hub_service.schedules import (
    ALIASES,
    Scheduler,
    check_timezone,
    expand,
    fire_times,
    parse_cron,
    shortest_interval,
)
from hub_service.store import Store

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def local(times):
    return [t.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M %Z") for t in times]


def test_daily_0230_in_berlin_on_the_spring_forward_day_runs_once_at_0300():
    # 2026-03-29: the clocks go from 02:00 CET straight to 03:00 CEST; 02:30 does not exist
    times = fire_times("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12, tzinfo=UTC), 3)
    assert local(times) == ["2026-03-29 03:00 CEST", "2026-03-30 02:30 CEST", "2026-03-31 02:30 CEST"]
    assert times[0] == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_daily_0230_in_berlin_on_the_fall_back_day_runs_once_at_the_first_0230():
    # 2026-10-25: 02:00-03:00 happens twice (CEST, then CET); croniter alone would run at both 02:30s
    times = fire_times("30 2 * * *", "Europe/Berlin", datetime(2026, 10, 24, 12, tzinfo=UTC), 3)
    assert local(times) == ["2026-10-25 02:30 CEST", "2026-10-26 02:30 CET", "2026-10-27 02:30 CET"]
    # asked again from inside the repeated hour (after the first 02:30): not again that day
    second_pass = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10 CET
    assert local(fire_times("30 2 * * *", "Europe/Berlin", second_pass, 1)) == ["2026-10-26 02:30 CET"]


def test_a_wildcard_hour_cron_runs_at_every_hour_the_clock_shows_across_both_changes():
    spring = fire_times("0 * * * *", "Europe/Berlin", datetime(2026, 3, 28, 23, 30, tzinfo=UTC), 3)
    assert local(spring) == ["2026-03-29 01:00 CET", "2026-03-29 03:00 CEST", "2026-03-29 04:00 CEST"]
    fall = fire_times("0 * * * *", "Europe/Berlin", datetime(2026, 10, 24, 23, 30, tzinfo=UTC), 3)
    assert local(fall) == ["2026-10-25 02:00 CEST", "2026-10-25 02:00 CET", "2026-10-25 03:00 CET"]
    assert [t - fall[0] for t in fall] == [timedelta(0), timedelta(hours=1), timedelta(hours=2)]


def test_several_skipped_times_of_a_fixed_hour_make_one_run_after_the_change():
    times = fire_times("*/15 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 22, tzinfo=UTC), 2)
    assert local(times) == ["2026-03-29 03:00 CEST", "2026-03-30 02:00 CEST"]


def test_utc_and_other_zones_fire_at_their_own_wall_clock():
    assert fire_times("0 9 * * 1-5", "UTC", datetime(2026, 12, 4, 10, tzinfo=UTC), 2) == [
        datetime(2026, 12, 7, 9, tzinfo=UTC), datetime(2026, 12, 8, 9, tzinfo=UTC)]
    ny = fire_times("0 9 * * *", "America/New_York", datetime(2026, 7, 1, tzinfo=UTC), 1)
    assert ny == [datetime(2026, 7, 1, 13, tzinfo=UTC)]  # EDT, UTC-4


@pytest.mark.parametrize("alias,first", [
    ("@hourly", datetime(2026, 12, 1, 18, tzinfo=UTC)),
    ("@daily", datetime(2026, 12, 2, tzinfo=UTC)),
    ("@midnight", datetime(2026, 12, 2, tzinfo=UTC)),
    ("@weekly", datetime(2026, 12, 6, tzinfo=UTC)),  # Sunday
    ("@monthly", datetime(2027, 1, 1, tzinfo=UTC)),
    ("@yearly", datetime(2027, 1, 1, tzinfo=UTC)),
    ("@annually", datetime(2027, 1, 1, tzinfo=UTC)),
])
def test_aliases_stand_for_their_classic_five_fields(alias, first):
    assert parse_cron(alias.upper()) == alias
    assert fire_times(alias, "UTC", datetime(2026, 12, 1, 17, 5, tzinfo=UTC), 1) == [first]
    assert expand(alias) == ALIASES[alias]


@pytest.mark.parametrize("cron,message", [
    ("61 * * * *", "the minute field '61' is not valid"),
    ("0 24 * * *", "the hour field '24' is not valid"),
    ("0 0 32 * *", "the day-of-month field '32' is not valid"),
    ("0 0 * 13 *", "the month field '13' is not valid"),
    ("0 0 * * MOO", "the day-of-week field 'MOO' is not valid"),
    ("*/0 * * * *", "the minute field '*/0'"),
    ("* * * *", "has 4 fields; it needs 5"),
    ("0 0 * * * 2030", "has 6 fields"),
    ("@fortnightly", "not a known alias"),
    ("0 0 30 2 *", "never fires"),
    ("", "cron is required"),
    (5, "cron is required"),
])
def test_a_bad_cron_is_refused_naming_the_field(cron, message):
    with pytest.raises(IntakeError) as e:
        parse_cron(cron)
    assert message in e.value.message and e.value.status == 400


def test_time_zones_are_iana_names_and_default_to_utc():
    assert check_timezone(None) == "UTC" and check_timezone("Europe/Berlin") == "Europe/Berlin"
    for bad in ("Mars/Olympus", "CEST+2", "../../etc/passwd", 7):
        with pytest.raises(IntakeError, match="timezone .* is not a known IANA time zone"):
            check_timezone(bad)


def test_the_shortest_interval_of_a_cron():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert shortest_interval("*/5 * * * *", "UTC", start) == 300
    assert shortest_interval("0 9 * * 1-5", "UTC", start) == 86400
    assert shortest_interval("0 0,12 * * *", "UTC", start, floor=3600) == 12 * 3600


@pytest.fixture
def scheduler(tmp_path):
    clock = {"now": datetime(2030, 1, 1, 12, tzinfo=UTC)}
    s = Scheduler(store=Store(f"sqlite:///{tmp_path / 'db.sqlite'}"), artifacts=Artifacts(tmp_path / "data"),
                  clock=lambda: clock["now"])
    s.test_clock = clock
    yield s
    s.store.close()


def test_the_admins_minimum_interval_refuses_a_cron_that_fires_more_often(scheduler):
    scheduler.minimum_interval = 3600
    assert scheduler.check_timing({"cron": "@hourly"})["cron"] == "@hourly"
    with pytest.raises(IntakeError, match=r"cron '\*/30 \* \* \* \*' runs 1800 s apart .* minimum interval .* 3600 s"):
        scheduler.check_timing({"cron": "*/30 * * * *"})
    scheduler.minimum_interval = 0
    assert scheduler.check_timing({"cron": "* * * * *"})["cron"] == "* * * * *"


def add(scheduler, **fields):
    values = dict(user="alice", name="n", cron="0 * * * *", timezone="UTC", overlap="skip", missed="skip",
                  paused=False, source_kind="snapshot", input_hash="0" * 64, input_kind="ipynb", input_name="n.ipynb",
                  parameters={}, requested={}, output_formats=["ipynb"], notify="never", skipped=0,
                  next_run=datetime(2030, 1, 1, 13))
    values.update(fields)
    return scheduler.store.create_schedule(**values)


def test_due_schedules_are_read_by_next_run_and_paused_ones_never(scheduler):
    due = add(scheduler, next_run=datetime(2030, 1, 1, 11))
    add(scheduler, next_run=datetime(2030, 1, 1, 13))
    add(scheduler, next_run=datetime(2030, 1, 1, 10), paused=True)
    assert [s.id for s in scheduler.store.due_schedules(datetime(2030, 1, 1, 12))] == [due.id]
    with scheduler.store.engine.connect() as c:
        detail = " ".join(str(r) for r in c.execute(text(
            "EXPLAIN QUERY PLAN SELECT * FROM schedules WHERE paused = 0 AND next_run <= '2030-01-01 12:00:00'")))
    assert "ix_schedules_due" in detail, detail


def test_a_fire_is_recorded_once_and_loses_to_a_change_made_in_between(scheduler):
    s = add(scheduler, next_run=datetime(2030, 1, 1, 11))
    later = datetime(2030, 1, 1, 13)
    taken = scheduler.store.advance([(s, later, s.next_run, "a" * 32)])
    assert len(taken) == 1
    again = scheduler.store.advance([(s, later, s.next_run, "b" * 32)])  # the same read, a second time
    assert again == []
    stored = scheduler.store.get_schedule(s.id)
    assert stored.pending_job == "a" * 32 and stored.next_run == later and stored.last_fire == s.next_run
    assert [x.id for x in scheduler.store.pending_fires()] == [s.id]
    scheduler.store.fire_done(s.id, "a" * 32, None)
    assert scheduler.store.get_schedule(s.id).pending_job is None and scheduler.store.pending_fires() == []


async def test_runs_missed_before_the_start_are_skipped_with_missed_skip_on_the_injected_clock(scheduler):
    s = add(scheduler, next_run=datetime(2030, 1, 1, 9), missed="skip")
    scheduler.started_at = scheduler.now()
    report = await scheduler.tick()
    assert report == {"fired": [], "skipped": [s.id]}
    stored = scheduler.store.get_schedule(s.id)
    assert stored.next_run == datetime(2030, 1, 1, 13) and stored.skipped == 1 and stored.pending_job is None
    scheduler.test_clock["now"] += timedelta(minutes=30)
    assert await scheduler.tick() == {"fired": [], "skipped": []}  # 12:30: nothing due
