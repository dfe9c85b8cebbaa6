#!/usr/bin/env python3
"""Turns bay's Kubernetes manifests into what `podman kube play` (4.3)
runs: each DaemonSet's and StatefulSet's pod template becomes a Pod, the
ConfigMap stays, and the test's values replace what only a cluster has
(images, host folders, addresses, the settings files).

Reads a JSON spec on stdin, prints the YAML documents on stdout:
  manifests   paths of the manifest files
  image       image of every container
  suffix      appended to each Pod's name
  config      ConfigMap key -> text (replaces the manifests' data)
  host_paths  host path in the manifests -> folder the test owns
  env         container name -> {variable: value} (replaces fieldRef ones)
  args        container name -> command (replaces the manifests' one)
  volumes     volume name -> folder, for volumeClaimTemplates

Every pod runs on the host's network (the test's addresses are loopback).
"""
import json
import sys

import yaml

spec = json.load(sys.stdin)
out = []
for path in spec["manifests"]:
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if not doc:
                continue
            kind = doc["kind"]
            if kind == "ConfigMap":
                doc["data"].update(spec["config"])
                out.append(doc)
            elif kind in ("DaemonSet", "StatefulSet"):
                template = doc["spec"]["template"]
                pod_spec = template["spec"]
                pod_spec["hostNetwork"] = True
                for vol in pod_spec.get("volumes", []):
                    host_path = vol.get("hostPath")
                    if host_path:
                        host_path["path"] = spec["host_paths"][host_path["path"]]
                for claim in doc["spec"].get("volumeClaimTemplates", []):
                    name = claim["metadata"]["name"]
                    pod_spec.setdefault("volumes", []).append(
                        {"name": name, "hostPath": {"path": spec["volumes"][name], "type": "Directory"}}
                    )
                for c in pod_spec.get("initContainers", []) + pod_spec["containers"]:
                    c["image"] = spec["image"]
                    # podman refuses port mappings on the host's network,
                    # where a cluster only documents them; probes that name
                    # a port get its number.
                    numbers = {p["name"]: p["containerPort"] for p in c.pop("ports", []) if "name" in p}
                    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                        get = c.get(probe, {}).get("httpGet")
                        if get and get["port"] in numbers:
                            get["port"] = numbers[get["port"]]
                    if c["name"] in spec["args"]:
                        c["command"] = spec["args"][c["name"]]
                    if c["name"] in spec["env"]:
                        c["env"] = [{"name": k, "value": v} for k, v in spec["env"][c["name"]].items()]
                out.append({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": doc["metadata"]["name"] + spec["suffix"],
                        "labels": template["metadata"].get("labels", {}),
                        # podman removes an init container it ran "once"
                        # and 4.3 may try while the container is still
                        # marked running; kept ("always"), it runs the same.
                        "annotations": {
                            **template["metadata"].get("annotations", {}),
                            "io.podman.annotations.init.container.type": "always",
                        },
                    },
                    "spec": pod_spec,
                })
yaml.safe_dump_all(out, sys.stdout, sort_keys=False)
