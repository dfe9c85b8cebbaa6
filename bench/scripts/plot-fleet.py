#!/usr/bin/python3
"""Draws bay-fleet-sim's JSON (--json) as a PNG: the time ratio (p50, p99,
max of the hosts' finish time over one image's time over one link) and
the origin's upload in copies of the image, against the number of hosts.
Scenarios are told apart by name; several JSON files may be given (for
example a run before and after a change), each labelled by its file
name; with --one they are drawn as one data set (a curve whose points
came from runs in different units).

    plot-fleet.py [--one] OUT.png RESULTS.json [MORE.json ...]
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(sources, one):
    """(tag, reports) for each data set."""
    sets = []
    for src in sources:
        with open(src) as f:
            data = json.load(f)
        tag = os.path.splitext(os.path.basename(src))[0]
        sets.append((tag, data["reports"]))
    if one and sets:
        return [(sets[0][0], [r for _, rs in sets for r in rs])]
    return sets


def main(out, sources, one=False):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    markers = "osd^v"
    sets = load(sources, one)
    for i, (tag, reports) in enumerate(sets):
        data = {"reports": reports}
        groups = {}
        for r in data["reports"]:
            groups.setdefault(r["name"], []).append(r)
        for name, rows in groups.items():
            rows.sort(key=lambda r: r["hosts"])
            n = [r["hosts"] for r in rows]
            label = f"{tag} {name}" if len(sets) > 1 else name
            m = markers[i % len(markers)]
            ax1.plot(n, [r["ratio_p50"] for r in rows], m + "-", label=f"{label} p50")
            ax1.plot(n, [r["ratio_p99"] for r in rows], m + "--", label=f"{label} p99")
            ax1.plot(n, [r["ratio_max"] for r in rows], m + ":", label=f"{label} max")
            ax2.plot(n, [r["origin_copies"] for r in rows], m + "-", label=label)
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("pulling hosts")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    ax1.axhline(1.3, color="gray", linestyle="--", linewidth=0.8)
    ax1.set_ylabel("finish time / (image / link)")
    ax1.set_title("time ratio")
    ax2.axhline(1.05, color="gray", linestyle="--", linewidth=0.8)
    ax2.set_ylabel("origin upload / image")
    ax2.set_title("seed uplink copies")
    fig.tight_layout()
    fig.savefig(out, dpi=80)


if __name__ == "__main__":
    args = sys.argv[1:]
    one = bool(args) and args[0] == "--one"
    if one:
        args = args[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    main(args[0], args[1:], one)
