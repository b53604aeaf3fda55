"""Fleet scans: many targets (hypervisors, their guests, exported configurations) in one run.

- :mod:`vmsec.fleet.inventory` reads the inventory file (which targets, their hypervisors, groups);
- :mod:`vmsec.fleet.runs` keeps runs in the findings store: one row per (run, target) with its state,
  attempts and failure reason, and the target's scan — written idempotently, so a task that runs
  twice (a killed worker, a redelivery) leaves the run with every target exactly once;
- :mod:`vmsec.fleet.runner` scans one run target through :func:`vmsec.pipeline.scan` (the workers and
  the in-process runner share it) and runs a whole fleet in-process under a concurrency bound;
- :mod:`vmsec.fleet.tasks` is the Celery side: the app, the task, the worker's settings;
- :mod:`vmsec.fleet.leases` caps concurrent scans per hypervisor across workers (Redis leases);
- :mod:`vmsec.fleet.schedules` keeps scheduled scans per group and claims them from workers.

Nothing here re-implements the pipeline: every target is scanned by ``vmsec.pipeline.scan``.
"""
