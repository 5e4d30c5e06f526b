"""What sessions, the hub and the Dask operator agree on: the labels, annotations and
names by which each finds what the others made.

A session (`pangeo-binder launch --kubernetes`, `test --kubernetes` or the hub's hooks)
marks its namespace and pods with these; the operator's policy, its admission webhooks
and the hub-rights process select by them. This is their one home: it ships in the
operator image with the rest of pangeo_binder.dask_operator, so it imports nothing.
"""

from __future__ import annotations

# The `app.kubernetes.io/part-of` of everything pangeo-binder makes.
PART_OF = "pangeo-binder"

# ------------------------------------------------------------------ the user

# The user's slug (`kube.user_slug`), on the session namespace and every object made for
# the user: what the admission webhooks and the hub-rights process select session
# namespaces by, and what object names are made of.
USER_LABEL = "pangeo-binder/user"
# The exact user name, on the namespace and on every object made for the user: the
# label holds only the slug, and ownership is decided by this.
USER_ANNOTATION = "pangeo-binder/user-name"

# ------------------------------------------------------------------ the session

# The worker cap, on every session namespace (whoever made it): the operator's policy
# reads it, and a namespace that carries it is a session namespace.
MAX_WORKERS_ANNOTATION = "pangeo-binder/max-workers"
# Session pods, from `launch --kubernetes` and from the hub hooks alike (KubeSpawner
# sets app.kubernetes.io/component itself, so the mark is a label of our own): the
# operator makes such a pod the owner of the namespace's Dask clusters.
SESSION_LABEL = "pangeo-binder/session"
SESSION_SELECTOR = {"app.kubernetes.io/part-of": PART_OF, SESSION_LABEL: "true"}

# Every session namespace holds its Dask clusters' credentials in this Secret: one key
# and self-signed certificate, made for that session alone, which is also the only CA its
# schedulers and workers trust (pangeo_binder.sessions.dask_tls makes it), and the secret
# path their dashboards answer under, which the operator's calls carry.
DASK_TLS_SECRET = "pangeo-binder-dask-tls"
DASHBOARD_PREFIX_KEY = "dashboard-prefix"
# The variable that path is given to Dask containers in.
DASHBOARD_PREFIX_ENV = "PANGEO_BINDER_DASK_DASHBOARD_PREFIX"

# ------------------------------------------------------------------ the operator

# The Dask operator's ServiceAccount (deploy/dask-operator/operator.yaml), and its rights
# in a session namespace: a RoleBinding of this name each session makes, to this
# ClusterRole.
OPERATOR_ACCOUNT = ("dask-operator", "dask-operator")  # namespace, name
OPERATOR_BINDING = "pangeo-binder-dask-operator"
OPERATOR_SESSION_ROLE = "pangeo-binder-dask-operator-session"

# ------------------------------------------------------------------ the hub

# "NAMESPACE:NAME" of the hub ServiceAccount that made a session namespace: the
# hub-rights process beside the Dask operator (pangeo_binder.dask_operator.hub_rights)
# binds the hub's session rights (ClusterRole HUB_SESSION_ROLE) there, in that namespace
# alone, as the RoleBinding HUB_BINDING.
HUB_ACCOUNT_ANNOTATION = "pangeo-binder/hub-account"
HUB_SESSION_ROLE = "pangeo-binder-hub-session"
HUB_BINDING = "pangeo-binder-hub"
