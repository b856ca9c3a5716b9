"""Schedules: notebooks run on a cron, at local wall-clock time, through the normal job flow.

Two layers. The pure one turns a cron and an IANA time zone into fire times
(:func:`fire_times`) and checks what a user sends (:func:`parse_cron`,
:func:`check_timezone`, ...). The :class:`Scheduler` keeps schedules in the store and
fires them: each tick reads the due ones with one indexed query, records every fire
(advancing ``next_run`` and promising a job id) in one transaction, and then makes
the jobs with :meth:`JobManager.submit`. A job id can be made only once and a fire
is recorded before its job exists, so a service stopped at any point neither fires
twice nor forgets a recorded fire: :meth:`Scheduler.recover` makes the promised job
at the next start.

Daylight-saving time follows classic (Vixie) cron, which croniter does only half of:
a wall-clock time skipped by a spring-forward change runs once, right after the
change (croniter agrees); a time the fall-back change shows twice runs once, at its
first occurrence (croniter runs it twice). A cron whose hour field is a wildcard
(``*``, ``*/2``) is not tied to a wall-clock hour: it runs at each hour the clock
shows, both of a fall-back's repeated hour, and none of a skipped one.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Optional
from uuid import uuid4
from zoneinfo import ZoneInfo, available_timezones

from croniter import CroniterBadDateError, croniter
from sqlalchemy.exc import IntegrityError
from traitlets import Any, Float, Instance, Integer, Unicode
from traitlets.config import LoggingConfigurable

from .intake import Bundle, IntakeError, check_choice, check_parameters
from .outputs import Artifacts
from .request import CHOICE_KEYS, CHOICES, SOURCE_KEYS, JobRequest, choices_of, read_choices, refuse_unknown
from .states import Status, reason_summary
from .store import Schedule, Store
from .store.models import isoformat
from .store.schedule_queries import TooManySchedules
from .workspace import WorkspaceFileMissing

UTC = timezone.utc

#: the aliases classic cron knows, as the five fields they stand for
ALIASES = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_ALLOWED = ("0-59", "0-23", "1-31", "1-12 or JAN-DEC", "0-7 or SUN-SAT")
OVERLAP = ("skip", "queue")
MISSED = ("skip", "run_once")
#: what POST /schedules reads besides a job's own fields
SCHEDULE_FIELDS = ("cron", "timezone", "overlap", "missed", "paused")
#: what POST /jobs reads (the submission of a schedule)
SUBMIT_FIELDS = SOURCE_KEYS + CHOICE_KEYS
#: what PATCH /schedules/{id} may change
PATCH_FIELDS = SCHEDULE_FIELDS + CHOICE_KEYS
#: fire times shown, and runs
NEXT_RUNS, LAST_RUNS = 5, 10
#: fires sampled to find a cron's shortest interval (two years of a twice-daily cron)
_GAP_SAMPLE = 1500


# -- cron and time zones (pure) ---------------------------------------------------------------


def expand(cron: str) -> str:
    """The five fields a cron (or an alias) stands for."""
    return ALIASES.get(cron.lower(), cron) if cron.startswith("@") else cron


#: each field's values (inclusive), and the names a field takes for its numbers
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = (
    {}, {}, {},
    {m: i + 1 for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV",
                                     "DEC"))},
    {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))},
)
#: one item of a field: ``*``, a value or a range ``a-b``, then an optional ``/step``
_ITEM = re.compile(r"(?:(?P<star>\*)|(?P<lo>[0-9]{1,2}|[A-Za-z]{3})(?:-(?P<hi>[0-9]{1,2}|[A-Za-z]{3}))?)"
                   r"(?:/(?P<step>[0-9]{1,2}))?")


def check_cron(cron: str) -> str:
    """The five fields as croniter is to compute them, or IntakeError naming the field that is not classic cron.

    Each field is a comma list of items: ``*``, a number, a range ``a-b`` with a <= b,
    each optionally followed by ``/step`` (a step on a number runs from it to the field's
    end); months also take JAN-DEC and weekdays SUN-SAT (case-insensitive, also as a
    range's ends), weekdays 0-7 (0 and 7 are Sunday). Nothing else: croniter's own
    extensions (``R``, ``L``, ``W``, ``#``, ``?``, a sixth or seventh field) are refused,
    so what is stored means what classic cron means.

    What it returns has each item but ``*`` and ``*/step`` spelled out as its values,
    because croniter reads some classic forms wrongly (``5-5`` as ``*``, ``1-1/9`` as
    ``1,10``, a weekday's ``1/2`` as ``1,3,5`` without Sunday's 7); the ``*`` items stay
    as written, since croniter looks for a ``*`` in the day-of-month and day-of-week
    fields to decide how to combine them.
    """
    fields = cron.split(" ")
    if len(fields) != 5:
        raise IntakeError(f"cron {cron!r} has {len(fields)} fields; it needs 5: {' '.join(FIELDS)}", field="/cron")
    out = []
    for i, field in enumerate(fields):
        low, high = _BOUNDS[i]

        def value(token: str) -> Optional[int]:
            number = _NAMES[i].get(token.upper()) if token.isalpha() else int(token)
            return number if number is not None and low <= number <= high else None

        items = []
        for item in field.split(","):
            m = _ITEM.fullmatch(item)
            ok = m is not None
            if ok and not m.group("star"):
                lo = value(m.group("lo"))
                hi = value(m.group("hi")) if m.group("hi") else lo
                if m.group("step") and not m.group("hi"):  # 'a/step': from a (a number, not a name) to the end
                    hi = None if m.group("lo").isalpha() else high
                ok = lo is not None and hi is not None and lo <= hi
            if ok and m.group("step"):
                ok = 1 <= int(m.group("step")) <= high - low + 1
            if not ok:
                raise IntakeError(f"cron {cron!r}: the {FIELDS[i]} field {field!r} is not valid "
                                  f"(values {_ALLOWED[i]}, as a number, a range a-b with a <= b, *, "
                                  "each with an optional /step, in a comma list)", field="/cron")
            if m.group("star"):
                items.append(item)
            else:  # (7 is Sunday, as 0 is)
                values = {0 if i == 4 and v == 7 else v for v in range(lo, hi + 1, int(m.group("step") or 1))}
                items.append(",".join(map(str, sorted(values))))
        out.append(",".join(items))
    return " ".join(out)


@functools.lru_cache(maxsize=4096)
def _computable(five: str) -> str:
    """What croniter computes a stored cron's (five fields') times with: :func:`check_cron`'s form; a cron stored
    before the service checked crons this strictly is handed to croniter as it is."""
    try:
        return check_cron(five)
    except IntakeError:
        return five


def parse_cron(value) -> str:
    """A cron as stored (whitespace normalised), or IntakeError naming the field that is wrong."""
    if not isinstance(value, str) or not value.strip():
        raise IntakeError("cron is required: five fields (minute hour day-of-month month day-of-week), "
                          f"e.g. '30 2 * * *', or one of {', '.join(ALIASES)}", field="/cron")
    cron = " ".join(value.split())
    if cron.startswith("@"):
        if cron.lower() not in ALIASES:
            raise IntakeError(f"cron {cron!r} is not a known alias; use one of {', '.join(ALIASES)}", field="/cron")
        return cron.lower()
    computable = check_cron(cron)
    if not croniter.is_valid(computable):  # (check_cron is the stricter: this is a second line)
        raise IntakeError(f"cron {cron!r} is not a valid cron expression", field="/cron")
    try:
        croniter(computable, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise IntakeError(f"cron {cron!r} never fires (no such date)", field="/cron") from None
    return cron


#: what ``available_timezones()`` may list that is not an IANA zone a schedule can mean
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@functools.lru_cache(maxsize=1)
def _zones() -> frozenset:
    """The IANA zone keys (and their links, such as ``UTC``), without the host's ``localtime`` and tzdata's
    ``Factory`` and such."""
    return frozenset(z for z in available_timezones()
                     if z not in _NOT_ZONES and not z.startswith(("posix/", "right/")))


def check_timezone(value) -> str:
    """An IANA time zone name (default UTC), or IntakeError naming ``timezone``."""
    if value in (None, ""):
        return "UTC"
    if not isinstance(value, str) or value not in _zones():
        raise IntakeError(f"timezone {str(value)[:60]!r} is not a known IANA time zone "
                          "(e.g. 'UTC', 'Europe/Berlin', 'America/New_York')", field="/timezone")
    return value


def check_bool(value, what: str) -> bool:
    """A JSON boolean, or a form's true/false/1/0 (the field ``/what``)."""
    if value in (None, ""):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    raise IntakeError(f"{what} must be true or false, got {str(value)[:60]!r}", field="/" + what)


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _after_gap(wall: datetime, tz: ZoneInfo, early: datetime, late: datetime) -> datetime:
    """The first instant whose wall-clock time is past ``wall`` (a time a spring-forward change skips)."""
    lo, hi = early, late  # the wall clock shows less than ``wall`` at lo, more at hi
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if _wall(mid, tz) >= wall:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def instants(wall: datetime, tz: ZoneInfo, wildcard_hour: bool) -> list:
    """The UTC instants at which a cron fires for the wall-clock time ``wall`` (see the module's DST rules)."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    if _wall(first, tz) == wall:  # shown twice (fall-back): fold 0 is the earlier
        return [first, second] if wildcard_hour else [first]
    if wildcard_hour:  # skipped (spring-forward): the next hour's run follows right after
        return []
    return [_after_gap(wall, tz, min(first, second), max(first, second))]


def fire_times(cron: str, tz_name: str, after: datetime, count: int = NEXT_RUNS) -> list:
    """The next ``count`` UTC instants strictly after ``after`` (aware) at which ``cron`` fires in ``tz_name``."""
    cron = expand(cron)
    tz = ZoneInfo(tz_name)
    wildcard_hour = cron.split()[1].startswith("*")
    # start a little early on the wall clock: ``after`` may lie in the second pass of a repeated hour
    it = croniter(_computable(cron), _wall(after, tz) - timedelta(hours=3))
    found, horizon = set(), None
    for _ in range(count * 50 + 200):
        try:
            wall = it.get_next(datetime)
        except CroniterBadDateError:
            break
        if horizon is not None and wall > horizon:
            break
        found.update(t for t in instants(wall, tz, wildcard_hour) if t > after)
        if horizon is None and len(found) >= count:
            horizon = wall + timedelta(hours=3)  # a gap's run may still sort before this one
    return sorted(found)[:count]


def shortest_interval(cron: str, tz_name: str, start: datetime, floor: float = 0) -> float:
    """The shortest time in seconds between two fires, over a sample of the next fires (stops below ``floor``)."""
    shortest = float("inf")
    cursor = start
    for _ in range(_GAP_SAMPLE // 50):
        times = fire_times(cron, tz_name, cursor, 51)
        for a, b in zip(times, times[1:]):
            shortest = min(shortest, (b - a).total_seconds())
            if shortest < floor:
                return shortest
        if len(times) < 51:
            break
        cursor = times[-1] - timedelta(seconds=1)
    return shortest


def _naive(instant: datetime) -> datetime:
    """What the store keeps: naive UTC."""
    return instant.astimezone(UTC).replace(tzinfo=None)


def _aware(stored: Optional[datetime]) -> Optional[datetime]:
    return stored.replace(tzinfo=UTC) if stored is not None else None


# -- the model the API answers -----------------------------------------------------------------


def failures_in_a_row(runs: list) -> int:
    """Failed runs since the last success, newest first (runs still going, and cancelled ones, do not count)."""
    count = 0
    for job in runs:
        if job.status == Status.SUCCEEDED:
            break
        if job.status == Status.FAILED:
            count += 1
    return count


def schedule_model(schedule: Schedule, runs: list, url: str) -> dict:
    """The REST representation of a schedule (``runs``: its jobs, newest first)."""
    requested = dict(schedule.requested or {})
    timeout = requested.pop("timeout", None)
    next_runs = []
    if not schedule.paused and schedule.next_run is not None:
        first = _aware(schedule.next_run)
        next_runs = [first] + fire_times(schedule.cron, schedule.timezone, first, NEXT_RUNS - 1)
    return {
        "id": schedule.id,
        "user": schedule.user,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "overlap": schedule.overlap,
        "missed": schedule.missed,
        "paused": bool(schedule.paused),
        "sweep": bool(schedule.sweep),
        "source": {"kind": schedule.source_kind, "path": schedule.path, "input_name": schedule.input_name,
                   "sha256": schedule.input_hash},
        **{name: getattr(schedule, name) for name in CHOICES if name != "requested"},  # the user's choices
        "resources": requested,  # (what was asked, shown as a submission sends it)
        "timeout": timeout,
        "created": isoformat(schedule.created),
        "updated": isoformat(schedule.updated),
        "next_runs": [t.isoformat() for t in next_runs],
        "last_runs": [{"id": j.id, "status": j.status, "reason": j.error_reason,
                       "summary": reason_summary(j.error_reason, j.cancelled_by) if j.error_reason else None,
                       "created": isoformat(j.created), "finished": isoformat(j.finished)} for j in runs[:LAST_RUNS]],
        "failures_in_a_row": failures_in_a_row(runs),
        "skipped": schedule.skipped or 0,
        "last_skipped": isoformat(schedule.last_skip),
        "last_error": schedule.last_error,
        "url": url,
    }


# -- the scheduler -----------------------------------------------------------------------------


class Scheduler(LoggingConfigurable):
    """Keeps the schedules and fires them through the job flow, one tick at a time."""

    store = Instance(Store)
    artifacts = Instance(Artifacts)
    jobs = Any(help="The JobManager that makes the jobs.")
    sweeps = Any(None, allow_none=True, help="The Sweeps that make the sweeps of a schedule with sweep: true.")
    #: ``read_path(user, path) -> Bundle``: a notebook from the user's workspace (raises WorkspaceFileMissing;
    #: :meth:`Workspaces.read`)
    read_path = Any()
    clock = Any(None, allow_none=True, help="A callable returning the aware UTC now (tests inject one).")

    tick_interval = Float(
        10.0,
        help="""Longest wait, in seconds, between two looks for due schedules. The scheduler also wakes
        at the earliest next run it knows of, and when a schedule is created or changed, so runs start
        on time whatever this is; it bounds how soon a clock change (clock_file) is noticed.""",
    ).tag(config=True)

    minimum_interval = Integer(
        0,
        help="""Shortest time, in seconds, a schedule may leave between two runs: a cron that fires more
        often is refused with a 400 naming it (e.g. 3600 allows at most hourly runs). 0: no minimum.""",
    ).tag(config=True)

    max_per_user = Integer(
        100,
        help="""Most schedules one user may keep; one more is refused with a 400 (too_many_schedules).
        0: no limit.""",
    ).tag(config=True)

    concurrency = Integer(
        8,
        help="""Runs of one tick made at the same time (sizing, storing and queueing each). The runs
        of many schedules due in the same minute are all made within the tick either way.""",
    ).tag(config=True)

    clock_file = Unicode(
        "",
        help="""For tests only: a file holding an ISO 8601 time that the scheduler takes as now (re-read at
        every tick; the real clock while it is missing). Lets a test move the scheduler's clock, across
        restarts too, without waiting for real time to pass. Leave empty in production.""",
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._task = None
        self._wake = asyncio.Event()
        self.started_at = None

    # -- time ---------------------------------------------------------------------------------

    def now(self) -> datetime:
        """Aware UTC now: the injected clock, the clock file, or the real clock."""
        if self.clock is not None:
            return self.clock()
        if self.clock_file:
            try:
                text = Path(self.clock_file).read_text().strip()
                return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
            except (OSError, ValueError):
                pass
        return datetime.now(UTC)

    @staticmethod
    def next_run_after(cron: str, tz: str, after: datetime) -> Optional[datetime]:
        """The first fire strictly after ``after`` (naive UTC for the store), or None when it never fires."""
        times = fire_times(cron, tz, after, 1)
        return _naive(times[0]) if times else None

    # -- what users send ----------------------------------------------------------------------

    def check_timing(self, form: dict, current: Optional[Schedule] = None) -> dict:
        """cron, timezone, overlap, missed, paused of a POST (or a PATCH over ``current``), checked."""
        out = {}
        if current is None or "cron" in form:
            out["cron"] = parse_cron(form.get("cron"))
        if current is None or "timezone" in form:
            out["timezone"] = check_timezone(form.get("timezone"))
        if current is None or "overlap" in form:
            out["overlap"] = check_choice(form.get("overlap"), "overlap", OVERLAP)
        if current is None or "missed" in form:
            out["missed"] = check_choice(form.get("missed"), "missed", MISSED)
        if current is None or "paused" in form:
            out["paused"] = check_bool(form.get("paused"), "paused")
        cron = out.get("cron", current.cron if current else None)
        tz = out.get("timezone", current.timezone if current else "UTC")
        if self.minimum_interval > 0 and ("cron" in out or "timezone" in out):
            gap = shortest_interval(cron, tz, self.now(), self.minimum_interval)
            if gap < self.minimum_interval:
                raise IntakeError(f"cron {cron!r} runs {int(gap)} s apart at times; this Hub's minimum interval "
                                  f"between runs is {self.minimum_interval} s", 400, "interval_too_short",
                                  field="/cron")
        return out

    def _too_many(self, user: str) -> IntakeError:
        return IntakeError(f"{user} already has {self.max_per_user} schedules, the most this Hub allows; "
                           "delete one first", 400, "too_many_schedules")

    def _check_limit(self, user: str) -> None:
        """Refuse early, before a create sizes and stores anything (the store's insert is the check that holds)."""
        if self.max_per_user and self.store.count_schedules(user) >= self.max_per_user:
            raise self._too_many(user)

    async def create(self, form: dict, request: JobRequest) -> Schedule:
        """A schedule that runs ``request`` (as POST /jobs reads it from ``form``) at the timing ``form`` gives;
        with ``"sweep": true``, each fire is a sweep of its parameters' lists (as POST /sweeps reads them)."""
        refuse_unknown(form, SUBMIT_FIELDS + SCHEDULE_FIELDS + ("sweep",),
                       f"a schedule takes {', '.join(SCHEDULE_FIELDS + SUBMIT_FIELDS)}, sweep")
        timing = self.check_timing(form)
        sweep = check_bool(form.get("sweep"), "sweep")
        self._check_limit(request.user)
        runs = [request]
        if sweep:
            grid, runs = await asyncio.to_thread(self.sweeps.expand, {"parameters": form.get("parameters")}, request)
            request = request.replace(parameters=grid["parameters"])
        await self.jobs.plan(runs[0])  # everything a submit would refuse, refused now
        source = dict(source_kind="path", path=request.path, input_hash=None) if request.path else dict(
            source_kind="snapshot", path=None, input_hash=self.artifacts.store_input(request.bundle))
        return self._insert(request, timing, dict(source, sweep=sweep))

    async def create_from_job(self, user: str, form: dict, job) -> Schedule:
        """A schedule that runs what ``job`` ran (its path, else its stored input); ``form`` overrides its choices."""
        refuse_unknown(form, ("from_job",) + PATCH_FIELDS,
                       f"with from_job a schedule takes {', '.join(PATCH_FIELDS)}")
        timing = self.check_timing(form)
        self._check_limit(user)
        if not job.input_hash:
            raise IntakeError(f"job {job.id} failed before it had an input; nothing to schedule", 422,
                              "nothing_to_schedule", field="/from_job")
        choices = choices_of(job)
        choices.update(read_choices(form, choices, only_given=True))
        if job.path:
            bundle = await asyncio.to_thread(self.read_path, user, job.path)
            source = dict(source_kind="path", path=job.path, input_hash=None)
        else:
            bundle = Bundle(self.artifacts.read_input(job.input_hash), job.input_kind, job.input_name)
            source = dict(source_kind="snapshot", path=None, input_hash=job.input_hash)
        choices["parameters"] = check_parameters(bundle.notebook, choices["parameters"])
        request = JobRequest(user=user, bundle=bundle, path=job.path, **choices)
        await self.jobs.plan(request)
        return self._insert(request, timing, source)

    def _insert(self, request: JobRequest, timing: dict, source: dict) -> Schedule:
        next_run = None if timing["paused"] else self.next_run_after(timing["cron"], timing["timezone"], self.now())
        user = request.user
        try:  # the limit's check and the insert are one transaction: concurrent creates cannot pass it together
            schedule = self.store.create_schedule(
                limit=self.max_per_user, user=user, input_kind=request.bundle.kind, input_name=request.bundle.name,
                next_run=next_run, skipped=0, **request.choices(), **timing, **source)
        except TooManySchedules:
            raise self._too_many(user) from None
        self.log.info("schedule %s created for %s: %s %s (%s)", schedule.id, user, schedule.cron, schedule.timezone,
                      schedule.name)
        self.wake()
        return schedule

    async def update(self, schedule: Schedule, form: dict) -> Schedule:
        """Apply a PATCH; a resumed or re-timed schedule next runs at its first fire from now."""
        if not isinstance(form, dict):
            raise IntakeError("request body must be a JSON object")
        refuse_unknown(form, PATCH_FIELDS, f"a schedule's changeable fields are {', '.join(PATCH_FIELDS)}")
        timing = self.check_timing(form, schedule)
        changes = dict(timing, **read_choices(form, choices_of(schedule), only_given=True))
        if changes.get("parameters"):
            bundle = await asyncio.to_thread(self._bundle, schedule)
            changes["parameters"] = (self._grid(schedule, bundle, changes["parameters"]) if schedule.sweep
                                     else check_parameters(bundle.notebook, changes["parameters"]))
        if changes.get("callback_url"):
            await self.jobs.check_callback_url(changes["callback_url"])
        if changes.get("environment"):  # (one the admin offers, that its jobs can run in)
            self.jobs.environments.choose(changes["environment"], changes.get("requested", schedule.requested)
                                          .get("gpu", 0), (), self.jobs.executor.runs_images)
        paused = changes.get("paused", schedule.paused)
        if paused:
            changes["next_run"] = None
        elif {"cron", "timezone"} & set(timing) or schedule.paused or schedule.next_run is None:
            cron, tz = changes.get("cron", schedule.cron), changes.get("timezone", schedule.timezone)
            changes["next_run"] = self.next_run_after(cron, tz, self.now())
        updated = self.store.update_schedule(schedule.id, **changes)
        self.wake()
        return updated

    def delete(self, schedule: Schedule) -> None:
        """Forget a schedule; the jobs it made stay (with their schedule_id)."""
        self.store.delete_schedule(schedule.id, schedule.user)
        self.log.info("schedule %s deleted", schedule.id)

    def get(self, schedule_id: str, user: Optional[str]) -> Optional[Schedule]:
        """The schedule, or None (given ``user``: none of that user's)."""
        return self.store.get_schedule(schedule_id, user)

    def models(self, schedules: list, url_for: Callable) -> list:
        """The API models of ``schedules``, their runs read in one query."""
        runs = self.store.schedule_runs([s.id for s in schedules])
        return [schedule_model(s, runs[s.id], url_for(s.id)) for s in schedules]

    def list(self, user: Optional[str]) -> list:
        """Schedules, newest first (everyone's for None)."""
        return self.store.list_schedules(user)

    async def run_now(self, schedule: Schedule):
        """Make a run of ``schedule`` now, whatever its timing and overlap say; returns the job."""
        job, error = await self._make_job(schedule, uuid4().hex)
        self.store.update_schedule(schedule.id, last_error=error)
        return job

    # -- firing -------------------------------------------------------------------------------

    def _bundle(self, schedule: Schedule) -> Bundle:
        """What a run of ``schedule`` runs: the workspace file as saved now, or the snapshot."""
        if schedule.source_kind == "path":
            return self.read_path(schedule.user, schedule.path)
        return Bundle(self.artifacts.read_input(schedule.input_hash), schedule.input_kind, schedule.input_name,
                      self.artifacts.input_files(schedule.input_hash))

    def _grid(self, schedule: Schedule, bundle: Bundle, parameters: dict) -> dict:
        """A sweep schedule's parameters (lists of values), checked as a sweep's are."""
        request = JobRequest.of_schedule(schedule, bundle).replace(parameters={})
        return self.sweeps.expand({"parameters": parameters}, request)[0]["parameters"]

    async def _make_job(self, schedule: Schedule, job_id: str) -> tuple:
        """Make the job ``job_id`` of a run: queued, or failed (invalid_input) when it cannot run; (job, error).
        A sweep schedule's run is a sweep, whose first run is the job ``job_id``."""
        try:
            bundle = await asyncio.to_thread(self._bundle, schedule)
            request = JobRequest.of_schedule(schedule, bundle)
            if schedule.sweep:
                grid, runs = await asyncio.to_thread(self.sweeps.expand, {"parameters": schedule.parameters},
                                                     request.replace(parameters={}))
                _sweep, jobs = await self.sweeps.submit(grid, runs, job_id=job_id)
                return jobs[0], None
            check_parameters(bundle.notebook, schedule.parameters)
            return await self.jobs.submit(request, job_id=job_id), None
        except IntegrityError:  # made before the service stopped: the fire's job exists
            return self.store.get(job_id), schedule.last_error
        except IntakeError as e:
            message = e.message
            if isinstance(e, WorkspaceFileMissing):
                message = f"{schedule.path} is gone from {schedule.user}'s workspace"
            elif schedule.path:
                message = f"{schedule.path}: {message}"
            row = dict(choices_of(schedule), user=schedule.user, schedule_id=schedule.id, path=schedule.path,
                       input_kind=schedule.input_kind, input_name=schedule.input_name)
            try:
                job = self.jobs.fail_unrunnable(row, message, job_id=job_id)
            except IntegrityError:
                job = self.store.get(job_id)
            self.log.warning("schedule %s: run %s cannot run: %s", schedule.id, job_id, message)
            return job, message

    async def tick(self) -> dict:
        """Fire every due schedule once; returns what it did (``fired``, ``skipped`` schedule ids)."""
        began = time.perf_counter()
        now = self.now()
        due = self.store.due_schedules(_naive(now))
        if not due:
            return {"fired": [], "skipped": []}
        busy = self.store.active_schedule_ids(s.id for s in due if s.overlap == "skip")
        started = _naive(self.started_at or now)
        fires = []
        for s in due:
            next_run = self.next_run_after(s.cron, s.timezone, now)
            missed = s.next_run < started  # fell due while the service was down
            if missed and s.missed == "skip":
                self.log.info("schedule %s: runs missed since %s skipped (missed=skip)", s.id, isoformat(s.next_run))
                fires.append((s, next_run, s.next_run, None))
            elif s.overlap == "skip" and s.id in busy:
                self.log.info("schedule %s: run of %s skipped, the previous one is still going (overlap=skip)",
                              s.id, isoformat(s.next_run))
                fires.append((s, next_run, s.next_run, None))
            else:
                fires.append((s, next_run, s.next_run, uuid4().hex))
        taken = self.store.advance(fires)  # one transaction: the fires are recorded before any job exists
        report = {"fired": [s.id for s, *_, job_id in taken if job_id is not None],
                  "skipped": [s.id for s, *_, job_id in taken if job_id is None]}
        # made side by side, as concurrent submits are: each waits on sizing and the store in turn
        slots = asyncio.Semaphore(max(1, self.concurrency))

        async def make(schedule, job_id):
            async with slots:
                _job, error = await self._make_job(schedule, job_id)
                self.store.fire_done(schedule.id, job_id, error)

        made = [(s, job_id) for s, *_, job_id in taken if job_id is not None]
        results = await asyncio.gather(*(make(s, job_id) for s, job_id in made), return_exceptions=True)
        for (s, job_id), result in zip(made, results):
            if isinstance(result, Exception):  # its pending_job stays: the next start makes the run
                self.log.error("schedule %s: making run %s failed", s.id, job_id, exc_info=result)
        self.log.info("scheduler tick: %d due, %d fired, %d skipped in %.1f ms", len(due), len(report["fired"]),
                      len(report["skipped"]), 1000 * (time.perf_counter() - began))
        return report

    async def recover(self) -> list:
        """Make the jobs of fires recorded before a stop whose jobs were not made; returns their ids."""
        made = []
        for s in self.store.pending_fires():
            if self.store.get(s.pending_job) is None:
                await self._make_job(s, s.pending_job)
                made.append(s.pending_job)
            self.store.fire_done(s.id, s.pending_job, s.last_error)
        if made:
            self.log.info("schedules: made the jobs of %d fire(s) recorded before the stop: %s", len(made), made)
        return made

    # -- the loop ------------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for due schedules now (one was created or changed)."""
        self._wake.set()

    async def start(self) -> None:
        """Recover promised fires and start the tick loop."""
        self.started_at = self.now()
        await self.recover()
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                self.log.exception("scheduler tick failed")
            wait = self.tick_interval
            soonest = self.store.soonest_run()
            if soonest is not None:
                wait = min(wait, max(0.0, (_aware(soonest) - self.now()).total_seconds()))
            try:
                await asyncio.wait_for(self._wake.wait(), max(wait, 0.05))
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
