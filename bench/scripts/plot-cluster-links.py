#!/usr/bin/python3
"""Draws the link timelines in the cluster run's JSON: for each scenario of
the run with HOSTS pulling hosts (default: 8, else the largest), the rate
into every pulling host and out of the registry and tracker hosts, in
Mbit/s, from the hub's link counters sampled every 250 ms, over the share of
the machine's CPU that was busy (shaded, scaled so the link rate is 100%).

    plot-cluster-links.py RESULTS.json OUT.png [HOSTS]
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def rates(links, key, i):
    ts, out = [], []
    for a, b in zip(links, links[1:]):
        dt = b["t"] - a["t"]
        if dt > 0:
            ts.append(b["t"])
            out.append((b[key][i] - a[key][i]) * 8 / dt / 1e6)
    return ts, out


def main(src, dst, hosts):
    with open(src) as f:
        results = json.load(f)["results"]
    counts = sorted({r["hosts"] for r in results})
    n = hosts or (8 if 8 in counts else counts[-1])
    shown = [r for r in results if r["hosts"] == n and r.get("links")]
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 3.2 * len(shown)), squeeze=False)
    for ax, r in zip(axes[:, 0], shown):
        links = r["links"]
        for i in range(2, 2 + n):
            t, v = rates(links, "down", i)
            ax.plot(t, v, linewidth=0.8, alpha=0.7, label="into each pulling host" if i == 2 else None)
        t, v = rates(links, "up", 0)
        ax.plot(t, v, "k--", linewidth=2, label="out of the registry host")
        t, v = rates(links, "up", 1)
        ax.plot(t, v, color="tab:red", linewidth=2, label="out of the tracker host")
        ax.axhline(r["rate_mbit"], color="gray", linestyle=":", label="link rate")
        cpu = [(l["t"], l.get("cpu_busy", 0) * r["rate_mbit"]) for l in links]
        ax.fill_between([c[0] for c in cpu], [c[1] for c in cpu], step="pre", color="gold",
                        alpha=0.25, label="machine CPU busy (link rate = 100%)")
        ax.set_title(f'{r["scenario"]}: {n} hosts, last done at {r["last_seconds"]:.1f} s '
                     f'(one-link time {r["ideal_seconds"]:.1f} s)')
        ax.set_ylabel("Mbit/s")
        ax.set_xlim(left=0)
        ax.set_ylim(0, r["rate_mbit"] * 1.3)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("seconds since the pulls started")
    fig.tight_layout()
    fig.savefig(dst, dpi=100)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) == 4 else None)
