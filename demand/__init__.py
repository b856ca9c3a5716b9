"""Demand model of Notebook Jobs: size each job, forecast the load, prove it on traces.

Modules: ``features`` (what is known at submit), ``model`` (per-job quantiles),
``forecast`` (hour-of-week load), ``train`` and ``registry`` (fitting and versions on
disk), ``sizing`` (the :class:`Sizer` the service calls), and the benchmark: ``trace``
(synthetic histories), ``policies`` (ours and the published baselines) and
``simulate`` (replay through a cluster).

The public names are imported lazily so that ``python -m demand.<module>`` does not
import that module twice.
"""

__all__ = ["Sizer", "notebook_features"]


def __getattr__(name):
    if name == "Sizer":
        from .sizing import Sizer
        return Sizer
    if name == "notebook_features":
        from .features import notebook_features
        return notebook_features
    raise AttributeError(f"module 'demand' has no attribute {name!r}")
