"""Sizing in plain words (hub_service.explain) and a parameters cell as form fields (intake)."""

import nbformat
import pytest

from hub_service.explain import predicted_time_words, size_words, sizing_words, time_words
from hub_service.intake import parameter_fields

GIB, MIB = 2**30, 2**20
BOUNDS = {"cpu": [0.25, 2.0], "memory": [256 * MIB, 4 * GIB], "timeout": [10.0, 6 * 3600.0]}


def resources(basis, allocated, predicted=None, requested=None):
    return {"requested": requested or {}, "predicted": predicted or dict(allocated),
            "allocated": dict(allocated, basis=basis)}


def test_sizes_and_times_read_as_a_person_says_them():
    assert [size_words(v) for v in (2 * GIB, 1.5 * GIB, 512 * MIB, 300)] == ["2 GiB", "1.5 GiB", "512 MiB", "300 B"]
    assert [time_words(v) for v in (45, 600, 6 * 3600, 9000)] == ["45 s", "10 min", "6 h", "2 h 30 min"]


def test_a_retry_after_an_oom_kill_says_how_many_times_what_it_was_killed_at():
    words = sizing_words(resources("user-history", {"cpu": 1, "memory": 2 * GIB, "timeout": 600},
                                   predicted={"cpu": 1, "memory": 700 * MIB, "timeout": 600}),
                         BOUNDS, retry={"reason": "oom_killed", "peak_memory": GIB, "allocated": {"memory": GIB}})
    assert words.startswith("2 GiB of memory: twice what the last run was killed at (1 GiB).")


@pytest.mark.parametrize("basis, expected", [
    ("cold-start", "2 GiB of memory: the admin's default, as there is nothing yet to size it by."),
    ("user-history", "2 GiB of memory: the most your recent runs like it used, with headroom."),
    ("model", "2 GiB of memory: what the demand model expects this notebook to need at most, with a margin."),
])
def test_each_basis_is_said_in_words_not_its_code_name(basis, expected):
    words = sizing_words(resources(basis, {"cpu": 1, "memory": 2 * GIB, "timeout": 6 * 3600}), BOUNDS)
    assert words.startswith(expected)
    assert "sized by" not in words and "-" not in words  # never the code name (cold-start, user-history)


def test_the_models_odds_and_a_broken_model_are_told():
    words = sizing_words(resources("model", {"cpu": 1, "memory": GIB, "timeout": 600},
                                   predicted={"memory": GIB, "timeout": 600, "memory_kill_odds": 0.03}), BOUNDS)
    assert "(it gives 3% odds that this is too little)" in words
    words = sizing_words(resources("user-history (model v0002: non-finite cpu)",
                                   {"cpu": 1, "memory": GIB, "timeout": 600}), BOUNDS)
    assert "the most your recent runs" in words and "the model could not size it: model v0002: non-finite cpu" in words


def test_requests_and_the_admins_bounds_are_named():
    asked = sizing_words(resources("request", {"cpu": 1, "memory": GIB, "timeout": 60},
                                   requested={"cpu": 1, "memory": GIB, "timeout": 60}), BOUNDS)
    assert asked == "1 GiB of memory: what you asked for. Time limit 60 s: what you asked for."
    capped = sizing_words(resources("model", {"cpu": 1, "memory": 4 * GIB, "timeout": 600},
                                    predicted={"memory": 9 * GIB, "timeout": 600}), BOUNDS)
    assert "it asked for 9 GiB, more than the admin's most" in capped
    raised = sizing_words(resources("user-history", {"cpu": 1, "memory": 256 * MIB, "timeout": 600},
                                    predicted={"memory": 100 * MIB, "timeout": 600}), BOUNDS)
    assert "raised from 100 MiB to the least any job gets" in raised


def test_a_predicted_time_past_the_longest_limit_is_no_promise():
    words = sizing_words(resources("model", {"cpu": 1, "memory": GIB, "timeout": 6 * 3600},
                                   predicted={"memory": GIB, "timeout": 9 * 3600}), BOUNDS)
    assert "Time limit 6 h, the longest allowed: the estimate is longer than the 6 h limit" in words
    assert predicted_time_words(9 * 3600, 6 * 3600) == "longer than the 6 h limit"
    assert predicted_time_words(1800, 6 * 3600) == "30 min"
    assert predicted_time_words(None, 6 * 3600) == ""


def test_a_timed_out_runs_retry_says_how_much_longer_it_may_run():
    words = sizing_words(resources("model", {"cpu": 1, "memory": GIB, "timeout": 1200},
                                   predicted={"memory": GIB, "timeout": 600}),
                         BOUNDS, retry={"reason": "timeout", "allocated": {"timeout": 600}})
    assert words.endswith("Time limit 20 min: twice the last run's, which ran out of time.")


def test_a_parameters_cell_becomes_typed_fields_with_the_notebooks_values():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('alpha = 0.5  # learning rate\nn: float = 3\nlabel = "x"\nflag = True\n'
                                     'layers = [64, 32]\nopts = {"a": 1}\nsize = 2 ** 10\nnothing = None\npair = (1, 2)')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]  # no kernelspec: papermill's inspection needs one, a default is assumed
    fields = {f["name"]: f for f in parameter_fields(nb)}
    assert fields["alpha"] == {"name": "alpha", "type": "float", "value": 0.5, "source": "0.5", "help": "learning rate",
                               "annotation": None}
    assert fields["n"]["annotation"] == "float"
    assert [fields[n]["type"] for n in ("n", "label", "flag", "layers", "opts", "size", "nothing", "pair")] == \
        ["float", "str", "bool", "json", "json", "expr", "none", "json"]
    assert fields["layers"]["value"] == [64, 32] and fields["pair"]["value"] == [1, 2]
    assert fields["size"]["value"] is None and fields["size"]["source"] == "2 ** 10"
    assert parameter_fields(nbformat.v4.new_notebook()) is None


def test_a_time_limit_not_chosen_by_the_model_is_the_admins_default():
    words = sizing_words(resources("cold-start", {"cpu": 1, "memory": 2 * GIB, "timeout": 3600}), BOUNDS)
    assert words.endswith("Time limit 60 min: the admin's default.")


def test_a_retry_says_why_it_got_more_than_was_asked_for():
    oom = sizing_words(resources("user-history", {"cpu": 1, "memory": 2 * GIB, "timeout": 60},
                                 requested={"memory": GIB, "timeout": 60}),
                       BOUNDS, retry={"reason": "oom_killed", "peak_memory": GIB, "allocated": {"memory": GIB}})
    assert oom.startswith("2 GiB of memory: twice what the last run was killed at (1 GiB).")
    late = sizing_words(resources("user-history", {"cpu": 1, "memory": GIB, "timeout": 4}, requested={"timeout": 2}),
                        BOUNDS, retry={"reason": "timeout", "allocated": {"timeout": 2}})
    assert late.endswith("Time limit 4 s: twice the last run's, which ran out of time.")


def policy_record(chosen, group, default="model"):
    return {"chosen": chosen, "default": default, "group": group, "odds": 0.004, "why": "…",
            "candidates": {"model": GIB, "rules": GIB, "recent": 2 * GIB, "default": 2 * GIB, "widest": 2 * GIB}}


@pytest.mark.parametrize("chosen, group, expected", [
    ("recent", "user", "2 GiB of memory: a little over your recent peaks (the estimate that has done best for your "
                       "jobs)."),
    ("widest", "notebook", "2 GiB of memory: the widest of the service's estimates, as smaller ones would have killed "
                           "jobs like it (the estimate that has done best for this notebook)."),
    ("default", "all", "2 GiB of memory: the admin's default (the estimate that has done best for everyone's jobs)."),
    ("peers", "notebook", "2 GiB of memory: what everyone's runs of this notebook with parameters like yours used, "
                          "with a margin (the estimate that has done best for this notebook)."),
    ("rules", "user", "2 GiB of memory: the most your recent runs like it used, with headroom (the estimate that has "
                      "done best for your jobs)."),
])
def test_memory_a_scoreboard_chose_is_said_by_its_policy_and_whose_jobs_chose_it(chosen, group, expected):
    predicted = {"memory": 2 * GIB, "timeout": 600, "memory_policy": policy_record(chosen, group)}
    words = sizing_words(resources("model", {"cpu": 1, "memory": 2 * GIB, "timeout": 600}, predicted=predicted),
                         BOUNDS)
    assert words.startswith(expected)
    assert "demand model" not in words  # the basis sized cpu and time only
    assert words.endswith("Time limit 10 min: well past how long it is expected to run.")


@pytest.mark.parametrize("record", [
    policy_record("model", "user"),              # the board agrees with the sizer's default
    policy_record("recent", "default"),          # too little evidence: the default served
    policy_record("widest", "off"),              # the board is kept, but does not serve
    policy_record("recent", "someone new"),      # a group this module does not know
    "recent",                                    # not a record at all
])
def test_memory_the_sizers_default_served_is_said_by_the_basis(record):
    predicted = {"memory": 2 * GIB, "timeout": 600, "memory_kill_odds": 0.004, "memory_policy": record}
    words = sizing_words(resources("model", {"cpu": 1, "memory": 2 * GIB, "timeout": 600}, predicted=predicted),
                         BOUNDS)
    assert words.startswith("2 GiB of memory: what the demand model expects this notebook to need at most, with a "
                            "margin (it gives 0.4% odds that this is too little).")


def test_a_board_choice_keeps_the_admins_bounds_and_the_models_failure_in_view():
    capped = sizing_words(resources("user-history (model v0002: non-finite cpu)",
                                    {"cpu": 1, "memory": 4 * GIB, "timeout": 600},
                                    predicted={"memory": 9 * GIB, "timeout": 600,
                                               "memory_policy": policy_record("widest", "all", default="rules")}),
                          BOUNDS)
    assert capped.startswith("4 GiB of memory: the widest of the service's estimates")
    assert "for everyone's jobs); it asked for 9 GiB, more than the admin's most" in capped
    assert "(the model could not size it: model v0002: non-finite cpu)." in capped
    assert "odds" not in capped  # the model's odds are for its own limit, not the one served


def test_a_first_runs_prior_reads_as_what_it_is_not_as_a_model_failure():
    # demand.sizing: a notebook's first run before the sizer's first bundle gets twice the default.
    words = sizing_words(resources("cold-start (first run: 2x the default)", {"cpu": 1, "memory": 4 * GIB,
                                                                             "timeout": 3600}), BOUNDS)
    assert words.startswith("4 GiB of memory: twice the admin's default, as a notebook's first run, "
                            "before enough jobs have finished to size it by."), words
    assert "model" not in words


def test_an_advisory_request_says_whether_it_was_served_and_why():
    """With Sizing.memory_requests = "advisory" a request is advice: when the board served it the
    words say whose record earned it; when another policy served, they say so and that the
    request was taken as advice -- not that it was beyond the admin's bounds."""
    served = dict(policy_record("requested", "user"), requests="advisory")
    words = sizing_words(resources("model", {"cpu": 1, "memory": 3 * GIB, "timeout": 600},
                                   predicted={"memory": 3 * GIB, "timeout": 600, "memory_policy": served},
                                   requested={"memory": 3 * GIB}), BOUNDS)
    assert words.startswith("3 GiB of memory: what you asked for (your requests have done best for your jobs).")
    other = dict(policy_record("recent", "notebook"), requests="advisory")
    words = sizing_words(resources("model", {"cpu": 1, "memory": 2 * GIB, "timeout": 600},
                                   predicted={"memory": 2 * GIB, "timeout": 600, "memory_policy": other},
                                   requested={"memory": 3 * GIB}), BOUNDS)
    assert words.startswith("2 GiB of memory: a little over your recent peaks (the estimate that has done best for "
                            "this notebook); you asked for 3 GiB, which this Hub takes as advice")
    assert "admin's most" not in words and "less than any job gets" not in words
    # served, but beyond the admin's most: clamped, and said so
    words = sizing_words(resources("model", {"cpu": 1, "memory": 4 * GIB, "timeout": 600},
                                   predicted={"memory": 4 * GIB, "timeout": 600, "memory_policy": served},
                                   requested={"memory": 8 * GIB}), BOUNDS)
    assert words.startswith("4 GiB of memory: what you asked for (the estimate that has done best for your jobs); "
                            "you asked for 8 GiB, more than the admin's most.")
    # a binding request that is the limit reads as before
    binding = dict(policy_record("model", "user"), requests="binding")
    words = sizing_words(resources("model", {"cpu": 1, "memory": 3 * GIB, "timeout": 600},
                                   predicted={"memory": 2 * GIB, "timeout": 600, "memory_policy": binding},
                                   requested={"memory": 3 * GIB}), BOUNDS)
    assert words.startswith("3 GiB of memory: what you asked for.")


def test_a_sweeps_run_sized_again_says_so_and_why_it_kept_its_limit():
    """demand.sizing.Sizer.resize_queued: a queued run of a sweep is sized again as its runs succeed,
    keeping its submission's record of every policy's limit; lowered only where finished runs covered it."""
    record = policy_record("recent", "user")  # (the submission's: the basis says what sized it now)
    again = sizing_words(resources("model", {"cpu": 1, "memory": GIB, "timeout": 600},
                                   predicted={"memory": GIB, "timeout": 600, "memory_policy": record,
                                              "resized_after_runs": 2}), BOUNDS)
    assert again.startswith("1 GiB of memory: what the demand model expects this notebook to need at most, with a "
                            "margin; sized again once 2 runs of its sweep had succeeded."), again
    assert "recent peaks" not in again
    kept = sizing_words(resources("model", {"cpu": 1, "memory": 4 * GIB, "timeout": 600},
                                  predicted={"memory": 4 * GIB, "timeout": 600, "memory_policy": record,
                                             "resized_after_runs": 1,
                                             "memory_kept": {"held": 4 * GIB, "sized": GIB}}), BOUNDS)
    assert kept.startswith("4 GiB of memory: what it was given when its sweep was submitted, as the one run of its "
                           "sweep that had succeeded by then did not have parameters as large as its own."), kept


def test_every_policy_a_scoreboard_can_choose_has_words():
    from demand.scoreboard import POLICIES
    from hub_service.explain import _POLICY_WORDS

    assert set(POLICIES) <= set(_POLICY_WORDS)
