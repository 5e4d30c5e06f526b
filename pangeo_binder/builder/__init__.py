"""Building: a source in, a smoke-tested, content-tagged image out.

One module a stage: `fetch` (the source's checkout) -> `kinds` (which environment it
gets: one module a kind, in repo2docker's order, each reading its `binder_files`; `lock`
resolves it, with `conda`, `conda_pypi`, `sandbox`) -> `plan` (Dockerfiles, contexts,
content tags) -> `pipeline` (build, smoke test, tag, push; `bases` and `registry` share
images through a registry).
`repo2docker` is the `jupyter-repo2docker` a BinderHub build pod runs.
"""
