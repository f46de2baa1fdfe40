"""The Kubernetes layer shared by the jobs: what a workload is and which Secrets it reads.

Why a layer of its own (between the jobs and the core, beside :mod:`secretsync.api`): the
controller (rollout restarts), the audit (who reads what) and the migrator (rewiring) all
need to read pod specs the same way. Jobs never import each other, so the one reader lives
here. Pure functions and small records only: no API client, no I/O.
"""
