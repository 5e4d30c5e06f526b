"""A workshop's prewarmed pool, as plain dicts (built as data: see sessions.objects).

Everything is in the workshop's own namespace (so `prewarm stop` removes exactly what
prewarm made): a DaemonSet that pulls every image onto every matching node, and
placeholder pods that hold the seats at a priority real sessions preempt. The
PriorityClass is cluster-scoped and named after the workshop.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .config import Workshop

Object = dict[str, Any]
PULLER = "puller"
SEATS = "seats"
# The puller's image list, which `prewarm status` reads back.
IMAGES_ANNOTATION = "pangeo-binder/images"


def _labels(workshop: Workshop, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "pangeo-binder-prewarm",
            "app.kubernetes.io/part-of": "pangeo-binder",
            "app.kubernetes.io/managed-by": "pangeo-binder",
            "app.kubernetes.io/component": component,
            "pangeo-binder/workshop": workshop.name}


def _security(uid: int) -> Object:
    return {"runAsUser": uid, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]}}


def _selector(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "pangeo-binder-prewarm",
            "app.kubernetes.io/component": component}


def _placement(workshop: Workshop) -> Object:
    """The nodes the workshop's sessions will run on."""
    placement: Object = {}
    if workshop.node_selector:
        placement["nodeSelector"] = dict(workshop.node_selector)
    if workshop.tolerations:
        placement["tolerations"] = [dict(t) for t in workshop.tolerations]
    return placement


def pool_objects(workshop: Workshop, images: Sequence[str]) -> list[Object]:
    namespace = workshop.namespace
    objects: list[Object] = [{
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": namespace, "labels": _labels(workshop, "prewarm"),
                     "annotations": {"pangeo-binder/until": workshop.until.isoformat()
                                     if workshop.until else ""}},
    }, {
        # Below every session (priority 0): the scheduler evicts a placeholder the moment
        # a real session needs its room, and placeholders never preempt anything
        # themselves.
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": namespace, "labels": _labels(workshop, "placeholder")},
        "value": -10,
        "globalDefault": False,
        "preemptionPolicy": "Never",
        "description": f"Placeholders holding seats for the {workshop.name} workshop.",
    }, {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": PULLER, "namespace": namespace,
                     "labels": _labels(workshop, "puller"),
                     "annotations": {IMAGES_ANNOTATION: json.dumps(list(images))}},
        "spec": {
            "selector": {"matchLabels": _selector("puller")},
            "updateStrategy": {
                "type": "RollingUpdate",
                # A new image list re-pulls on all nodes at once.
                "rollingUpdate": {"maxUnavailable": "100%"}},
            "template": {
                "metadata": {"labels": _labels(workshop, "puller")},
                "spec": {
                    # Each image is pulled by an init container that exits at once; the
                    # pod is Ready (this node has every image) only when all of them have
                    # run.
                    "initContainers": [{
                        "name": f"image-{index}",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["/bin/sh", "-c", "exit 0"],
                        "securityContext": _security(1000),
                        "resources": {"requests": {"cpu": "1m", "memory": "8Mi"},
                                      "limits": {"cpu": "100m", "memory": "64Mi"}},
                    } for index, image in enumerate(images, start=1)],
                    "containers": [{
                        "name": "pause",
                        "image": workshop.pause_image,
                        "imagePullPolicy": "IfNotPresent",
                        "securityContext": _security(65535),
                        "resources": {"requests": {"cpu": "1m", "memory": "8Mi"},
                                      "limits": {"cpu": "10m", "memory": "32Mi"}},
                    }],
                    "terminationGracePeriodSeconds": 0,
                    "automountServiceAccountToken": False,
                    **_placement(workshop),
                },
            },
        },
    }]
    if workshop.seats.count:
        seat = {"cpu": workshop.seats.cores, "memory": workshop.seats.memory}
        objects.append({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": SEATS, "namespace": namespace,
                         "labels": _labels(workshop, "placeholder")},
            "spec": {
                "replicas": workshop.seats.count,
                "selector": {"matchLabels": _selector("placeholder")},
                "template": {
                    "metadata": {"labels": _labels(workshop, "placeholder")},
                    "spec": {
                        "priorityClassName": namespace,
                        "terminationGracePeriodSeconds": 0,
                        "automountServiceAccountToken": False,
                        "containers": [{
                            "name": "seat",
                            "image": workshop.pause_image,
                            "imagePullPolicy": "IfNotPresent",
                            "securityContext": _security(65535),
                            "resources": {"requests": dict(seat), "limits": dict(seat)},
                        }],
                        **_placement(workshop),
                    },
                },
            },
        })
    return objects
