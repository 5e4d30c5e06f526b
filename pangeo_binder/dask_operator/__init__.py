"""pangeo-binder's policy for the dask-kubernetes operator (`policy`: session ownership,
worker caps; `admission`: the webhook's rules). It ships alone in the operator image, so
it imports nothing else of pangeo_binder."""
