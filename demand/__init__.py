"""Demand model of Notebook Jobs: size each job, forecast the load, prove it on traces.

Serving (what the service and its sizing worker import): ``policy`` (the rules every
limit obeys; light enough for the service process), ``features`` (what is known at
submit), ``model`` (per-job quantiles), ``checks`` (no non-finite number serves),
``forecast`` (hour-of-week load), ``train`` and ``registry`` (fitting and versions on
disk), ``sizing`` (:class:`demand.sizing.Sizer`, the one entry point), ``report``
(how the limits did). Benchmark: ``replay`` (traces, baselines, the replay). Command
line: ``python -m demand.cli``.

Nothing is re-exported here: the service imports ``demand.policy`` and
``demand.features`` without loading scikit-learn, which ``demand.sizing`` needs.
"""
