"""Trace families the demand model is benchmarked on, each written on its own assumptions.

``habits`` is :mod:`demand.replay.trace` (people re-running a few notebooks from a small
repertoire of sizes). The others are kept here, out of the package the service
imports, so that the model is never tuned to them: ``sweeps`` (parameter sweeps over
continuous ranges, memory set by imported libraries plus one data parameter, many
deterministic notebooks), ``shared`` (a team's shared notebooks run by everyone
around the clock, memory set by a categorical dataset, cache hits, a library upgrade
that shifts usage, a rare runaway), ``edits`` (notebooks edited before every run, so
no signature repeats; memory set by the user and one data parameter) and ``teams``
(notebooks shared across a team; a categorical mode, parameters that multiply, bimodal
runs, weekly data growth, far-off requests, queued bursts). All write the same CSV columns.
"""

from demand.replay.trace import generate as habits

from .edits import generate as edits
from .shared import generate as shared
from .sweeps import generate as sweeps
from .teams import generate as teams

#: Generators by family name: ``generate(days, users, seed) -> rows``.
FAMILIES = {"habits": habits, "sweeps": sweeps, "shared": shared, "edits": edits, "teams": teams}
