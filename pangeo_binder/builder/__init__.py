"""Building: a source in, a smoke-tested, content-tagged image out.

One module a stage: `fetch` (the source's checkout) -> `detect` (its binder files) ->
`kinds` (which environment it gets: `lock` resolves it, with `conda`, `conda_pypi`,
`sandbox`) -> `plan` (Dockerfiles, contexts, content tags) -> `pipeline` (build, smoke
test, tag, push; `bases` and `registry` share images through a registry).
`repo2docker` is the `jupyter-repo2docker` a BinderHub build pod runs.
"""
