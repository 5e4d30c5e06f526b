"""The DaskCluster spec KubeCluster() sends, made by dask-kubernetes itself when it is
installed (as in the images); otherwise a copy of its shape for 2026.3."""

from __future__ import annotations


def cluster_spec(image: str) -> dict:
    try:
        from dask_kubernetes.operator import make_cluster_spec
    except ImportError:
        pass
    else:
        return make_cluster_spec(name="work", image=image, n_workers=2)["spec"]
    container = {"image": image, "env": None, "resources": None}
    return {
        "idleTimeout": 0,
        "worker": {"replicas": 2, "spec": {"containers": [
            {**container, "name": "worker",
             "args": ["dask-worker", "--name", "$(DASK_WORKER_NAME)", "--dashboard",
                      "--dashboard-address", "8788"],
             "ports": [{"name": "http-dashboard", "containerPort": 8788,
                        "protocol": "TCP"}]}]}},
        "scheduler": {
            "spec": {"containers": [
                {**container, "name": "scheduler",
                 "args": ["dask-scheduler", "--host", "0.0.0.0"],
                 "ports": [{"name": "tcp-comm", "containerPort": 8786, "protocol": "TCP"},
                           {"name": "http-dashboard", "containerPort": 8787,
                            "protocol": "TCP"}]}]},
            "service": {"type": "ClusterIP",
                        "selector": {"dask.org/cluster-name": "work",
                                     "dask.org/component": "scheduler"},
                        "ports": [{"name": "tcp-comm", "protocol": "TCP", "port": 8786,
                                   "targetPort": "tcp-comm"},
                                  {"name": "http-dashboard", "protocol": "TCP",
                                   "port": 8787, "targetPort": "http-dashboard"}]}},
    }
