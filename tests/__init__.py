"""pangeo-binder's tests: unit/ (no real part needed), integration/ (real Docker builds,
the local registry, the dev Kubernetes cluster), helpers/ (what both import)."""
