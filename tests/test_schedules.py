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
    check_cron,
    check_timezone,
    expand,
    fire_times,
    parse_cron,
    shortest_interval,
)
from hub_service.store import Store
from hub_service.store.schedule_queries import TooManySchedules

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
def scheduler(tmp_path, db_url):
    clock = {"now": datetime(2030, 1, 1, 12, tzinfo=UTC)}
    s = Scheduler(store=Store(db_url), artifacts=Artifacts(tmp_path / "data"),  # SQLite and PostgreSQL
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
        explain = "EXPLAIN QUERY PLAN"
        if c.dialect.name == "postgresql":  # which reads a table this small whole unless told not to
            c.execute(text("SET enable_seqscan = off"))
            explain = "EXPLAIN"
        detail = " ".join(str(r) for r in c.execute(text(
            f"{explain} SELECT * FROM schedules WHERE paused = false AND next_run <= '2030-01-01 12:00:00'")))
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


# -- what a cron may be: exactly classic cron's five fields ------------------------------------


@pytest.mark.parametrize("cron,first_three", [
    ("30 2 * * *", ["2027-01-01 02:30", "2027-01-02 02:30", "2027-01-03 02:30"]),
    ("*/20 * * * *", ["2027-01-01 00:00", "2027-01-01 00:20", "2027-01-01 00:40"]),
    ("0-10/5 * * * *", ["2027-01-01 00:00", "2027-01-01 00:05", "2027-01-01 00:10"]),
    ("50/5 * * * *", ["2027-01-01 00:50", "2027-01-01 00:55", "2027-01-01 01:50"]),  # a step on a number: to 59
    ("5-5 * * * *", ["2027-01-01 00:05", "2027-01-01 01:05", "2027-01-01 02:05"]),  # croniter alone: every minute
    ("0 1-1/9 * * *", ["2027-01-01 01:00", "2027-01-02 01:00", "2027-01-03 01:00"]),  # croniter alone: 1 and 10
    ("0 9,17 * * *", ["2027-01-01 09:00", "2027-01-01 17:00", "2027-01-02 09:00"]),
    ("0 0 1,15 * *", ["2027-01-01 00:00", "2027-01-15 00:00", "2027-02-01 00:00"]),
    ("0 0 1 jan-mar *", ["2027-01-01 00:00", "2027-02-01 00:00", "2027-03-01 00:00"]),
    ("0 0 1 DEC *", ["2027-12-01 00:00", "2028-12-01 00:00", "2029-12-01 00:00"]),
    ("0 12 * * MON-FRI", ["2027-01-01 12:00", "2027-01-04 12:00", "2027-01-05 12:00"]),  # 2027-01-01 is a Friday
    ("0 12 * * sat,Sun", ["2027-01-02 12:00", "2027-01-03 12:00", "2027-01-09 12:00"]),
    ("0 12 * * 7", ["2027-01-03 12:00", "2027-01-10 12:00", "2027-01-17 12:00"]),  # 7 is Sunday, as 0 is
    ("0 12 * * 5-7", ["2027-01-01 12:00", "2027-01-02 12:00", "2027-01-03 12:00"]),
    ("0 12 * * 6/1", ["2027-01-02 12:00", "2027-01-03 12:00", "2027-01-09 12:00"]),  # 6 to 7: Sat and Sun
    ("0 12 * * 0-7", ["2027-01-01 12:00", "2027-01-02 12:00", "2027-01-03 12:00"]),
    ("0   12\t* *  *", ["2027-01-01 12:00", "2027-01-02 12:00", "2027-01-03 12:00"]),  # any whitespace between
])
def test_classic_cron_forms_are_accepted_and_fire_as_classic_cron_does(cron, first_three):
    stored = parse_cron(cron)
    assert stored == " ".join(cron.split())
    times = fire_times(stored, "UTC", datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), 3)
    assert [t.strftime("%Y-%m-%d %H:%M") for t in times] == first_three


@pytest.mark.parametrize("cron,field", [
    ("R R * * *", "minute field 'R'"),  # croniter's random: different next runs at every look
    ("0 R * * *", "hour field 'R'"),
    ("1-0 * * * *", "minute field '1-0'"),  # reversed: croniter fires it every minute
    ("0 23-1 * * *", "hour field '23-1'"),
    ("0 0 * * FRI-SUN", "day-of-week field 'FRI-SUN'"),  # SUN is 0: reversed
    ("0 0 L * *", "day-of-month field 'L'"),
    ("0 0 1W * *", "day-of-month field '1W'"),
    ("0 0 LW * *", "day-of-month field 'LW'"),
    ("0 0 * * 5L", "day-of-week field '5L'"),
    ("0 0 * * 1#2", "day-of-week field '1#2'"),
    ("0 0 ? * *", "day-of-month field '?'"),
    ("0 0 * * ?", "day-of-week field '?'"),
    ("H * * * *", "minute field 'H'"),
    ("0 0 * JAN/2 *", "month field 'JAN/2'"),  # a step on a number, not on a name
    ("*/0 * * * *", "minute field '*/0'"),
    ("*/61 * * * *", "minute field '*/61'"),
    ("0 0 * * 8", "day-of-week field '8'"),
    ("0 0 0 * *", "day-of-month field '0'"),
    ("0 0 * 0 *", "month field '0'"),
    ("0 0 * * MOO", "day-of-week field 'MOO'"),
    ("0 0 * * MONDAY", "day-of-week field 'MONDAY'"),
    ("MON * * * *", "minute field 'MON'"),  # names only in month and day-of-week
    ("1,,2 * * * *", "minute field '1,,2'"),
    ("1, * * * *", "minute field '1,'"),
    ("*-5 * * * *", "minute field '*-5'"),
    ("-5 * * * *", "minute field '-5'"),
    ("5- * * * *", "minute field '5-'"),
    ("1-2-3 * * * *", "minute field '1-2-3'"),
    ("1/2/3 * * * *", "minute field '1/2/3'"),
    ("+5 * * * *", "minute field '+5'"),
    ("005 * * * *", "minute field '005'"),
    ("\u0663 * * * *", "minute field"),  # an Arabic-Indic 3: int() reads it, cron does not
    ("0 0 * * * *", "has 6 fields"),  # seconds (or years): croniter's six-field form
    ("0 0 0 * * * 2030", "has 7 fields"),
    ("@reboot", "not a known alias"),
])
def test_what_classic_cron_does_not_know_is_refused_naming_the_field(cron, field):
    with pytest.raises(IntakeError) as e:
        parse_cron(cron)
    assert field in e.value.message and "cron" in e.value.message and e.value.status == 400


def test_check_cron_hands_croniter_values_it_reads_right_and_keeps_the_stars():
    assert check_cron("5-5 1-1/9 */2 JAN-MAR 6/1") == "5 1 */2 1,2,3 0,6"
    assert check_cron("* * * * *") == "* * * * *"


@pytest.mark.parametrize("zone", ["UTC", "Etc/UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Asia/Kolkata"])
def test_iana_zones_are_accepted(zone):
    assert check_timezone(zone) == zone


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "posix/Europe/Berlin", "right/UTC",
                                  "europe/berlin", "Europe/Berlin ", "", ])
def test_what_is_not_an_iana_zone_key_is_refused(zone):
    if zone == "":
        assert check_timezone(zone) == "UTC"  # missing: the default
        return
    with pytest.raises(IntakeError, match="timezone .* is not a known IANA time zone"):
        check_timezone(zone)


# -- the per-user limit: one atomic step ------------------------------------------------------


SCHEDULE = dict(name="n", cron="@daily", timezone="UTC", overlap="skip", missed="skip", paused=True,
                source_kind="snapshot", input_hash="0" * 64, input_kind="ipynb", input_name="n.ipynb",
                parameters={}, requested={}, output_formats=["ipynb"], notify="never", skipped=0)


def test_concurrent_creates_never_pass_the_limit_and_a_delete_frees_a_place(db_url):
    """80 creates from 80 threads at once, starting at limit - 5: exactly 5 are stored (PostgreSQL: under its
    default READ COMMITTED, where counting and then inserting lets most of them through)."""
    import threading
    import uuid

    store = Store(db_url)  # a new database on SQLite, and on PostgreSQL (tests/conftest.py's db_url)
    user, other, limit = f"alice-{uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex[:8]}", 10
    for _ in range(limit - 5):
        store.create_schedule(limit=limit, user=user, **SCHEDULE)
    start, outcomes = threading.Barrier(80), []

    def create():
        start.wait()
        try:
            store.create_schedule(limit=limit, user=user, **SCHEDULE)
            outcomes.append("made")
        except TooManySchedules:
            outcomes.append("refused")

    threads = [threading.Thread(target=create) for _ in range(80)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("made") == 5 and outcomes.count("refused") == 75
    assert store.count_schedules(user) == limit
    with pytest.raises(TooManySchedules):
        store.create_schedule(limit=limit, user=user, **SCHEDULE)
    first = store.list_schedules(user)[0]
    store.delete_schedule(first.id, user)
    store.delete_schedule(first.id, user)  # gone already: frees nothing more
    store.create_schedule(limit=limit, user=user, **SCHEDULE)
    with pytest.raises(TooManySchedules):
        store.create_schedule(limit=limit, user=user, **SCHEDULE)
    store.create_schedule(limit=limit, user=other, **SCHEDULE)  # a count per user
    assert store.count_schedules(user) == limit
    with store.engine.connect() as c:
        counts = dict(c.execute(text('SELECT "user", n FROM schedule_counts')).all())
    assert counts[user] == 10 and counts[other] == 1
    store.close()


def test_the_counts_migration_fills_in_the_schedules_kept_and_goes_down_and_up_again(tmp_path):
    from sqlalchemy import inspect

    from hub_service.store.queries import make_engine, migrate

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = make_engine(url)

    def counts():
        with engine.connect() as c:
            return dict(c.execute(text("SELECT user, n FROM schedule_counts")).all())

    migrate(engine, "0004")
    with engine.begin() as c:
        for i, user in enumerate(["alice", "alice", "alice", "bob"]):
            c.execute(text(
                "INSERT INTO schedules (id, user, name, cron, timezone, overlap, missed, paused, source_kind,"
                " input_kind, input_name, parameters, requested, output_formats, notify, skipped, created, updated)"
                f" VALUES ('s{i}', '{user}', '', '@daily', 'UTC', 'skip', 'skip', 0, 'snapshot', 'ipynb', '', '{{}}',"
                " '{}', '[]', 'never', 0, '2026-01-01', '2026-01-01')"))
    migrate(engine, "0005")
    assert counts() == {"alice": 3, "bob": 1}
    migrate(engine, "0004", down=True)
    assert "schedule_counts" not in inspect(engine).get_table_names()
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM schedules")).scalar() == 4
    migrate(engine, "head")
    assert counts() == {"alice": 3, "bob": 1}
    engine.dispose()

    store = Store(url)  # the store at head enforces the limit on the counts it found
    values = dict(name="n", cron="@daily", timezone="UTC", overlap="skip", missed="skip", paused=True,
                  source_kind="snapshot", input_hash="0" * 64, input_kind="ipynb", input_name="n.ipynb",
                  parameters={}, requested={}, output_formats=["ipynb"], notify="never", skipped=0)
    with pytest.raises(TooManySchedules):
        store.create_schedule(limit=3, user="alice", **values)
    store.create_schedule(limit=3, user="bob", **values)
    store.delete_schedule("s0")  # the user read from the row
    store.create_schedule(limit=3, user="alice", **values)
    assert store.count_schedules("alice") == 3 and store.count_schedules("bob") == 2
    store.close()
