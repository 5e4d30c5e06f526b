"""Sessions: a notebook server and its user's Dask clusters, locally or on Kubernetes
(`launch`), within the caps of `dask_policy`, over TLS (`dask_tls`)."""
