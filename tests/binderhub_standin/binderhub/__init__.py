"""A stand-in for the parts of BinderHub that pangeo_binder.hub.launch_quota builds on.

BinderHub is not published as an installable package (it ships as a helm chart and an
image), so the tests import these instead: the same module paths, class names, traits,
attributes and exception as BinderHub's `binderhub.quota` and `binderhub.health`, with
none of BinderHub's own counting (pangeo-binder's classes replace that part).
"""
