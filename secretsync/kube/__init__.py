"""The one Kubernetes layer shared by the jobs: how to reach the API and what objects mean.

Why a layer of its own (below the jobs, above :mod:`secretsync.api`): the controller, the
audit, ``scan --cluster`` and ``migrate --cluster`` all talk to the API server and read pod
specs; jobs never import each other, so the one way of doing each lives here:

* :mod:`.client`: the API client (lean JSON on the official client's pool) and ``KubeError``;
* :mod:`.config`: kubeconfig / in-cluster loading with the official loader;
* :mod:`.kinds`: the table of kinds (REST path, scope, pod spec, version fallbacks);
* :mod:`.labels`: the labels and annotations secretsync writes and recognises;
* :mod:`.podspec` and :mod:`.consumers`: which Secrets (and keys) a workload reads.
"""
