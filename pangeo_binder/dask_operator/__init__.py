"""pangeo-binder's policy for the dask-kubernetes operator (`policy`: session ownership,
worker caps; `admission`: the webhook's rules; `contract`: the labels, annotations and
names sessions, the hub and the operator share). It ships alone in the operator image, so
it imports nothing else of pangeo_binder."""
