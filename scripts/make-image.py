#!/usr/bin/python3
"""Writes a fresh OCI image layout for the demo: one uncompressed tar layer
per size given (MiB), random content, so every run is a cold start.

    make-image.py DIR SIZE_MIB [SIZE_MIB...]

DIR gets index.json, oci-layout, blobs/sha256/... and a copy of the
manifest as manifest.json; the image is tagged "demo".
"""
import hashlib
import io
import json
import os
import sys
import tarfile


def put_blob(blobs, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)


def layer(index, mib):
    content = os.urandom(mib << 20)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"layer{index}.bin")
        info.size = len(content)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def main():
    out, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    layers = []
    for i, mib in enumerate(sizes):
        digest, size = put_blob(blobs, layer(i, mib))
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                       "digest": digest, "size": size})
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]},
        "config": {},
    }, sort_keys=True).encode()
    config_digest, config_size = put_blob(blobs, config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": layers,
    }, sort_keys=True).encode()
    manifest_digest, manifest_size = put_blob(blobs, manifest)
    with open(os.path.join(out, "manifest.json"), "wb") as f:
        f.write(manifest)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "demo"}}]}, f)


if __name__ == "__main__":
    main()
