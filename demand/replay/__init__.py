"""The benchmark: synthetic traces, baseline policies, and the replay that compares them.

Nothing here is on the serving path -- the service never imports this package -- so a
generator or a baseline can change without touching what sizes jobs, and the model's
code (``demand.model``, ``demand.sizing``) never reads a generator's constants. The
replay sizes the model's jobs through :class:`demand.sizing.Sizer`, the service's own
code, and holds every policy to :mod:`demand.policy`'s rules.

``trace`` (the ``habits`` family), ``policies`` (ours and the published baselines, and
the bounds that know what a generator hid), ``simulate`` (the replay).
"""
