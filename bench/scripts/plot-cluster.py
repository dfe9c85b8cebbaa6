#!/usr/bin/python3
"""Draws the cluster run's JSON (from bay-cluster-bench) as a PNG.

Left: hosts finished over time for each scenario at the largest run's host
count, with the one-link time of the image as a dashed line. Right (when
the JSON holds several host counts): the time ratio against the number of
hosts for each scenario.

    plot-cluster.py RESULTS.json OUT.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"cold": "tab:blue", "warm": "tab:green", "direct": "tab:red"}
LABELS = {"cold": "bay cold", "warm": "bay warm", "direct": "direct from registry"}


def main(src, out):
    with open(src) as f:
        data = json.load(f)
    results = data["results"]
    counts = sorted({r["hosts"] for r in results})
    main_n = 8 if 8 in counts else counts[-1]
    sweep = len(counts) > 1
    fig, axes = plt.subplots(1, 2 if sweep else 1, figsize=(12 if sweep else 7, 4.5))
    ax = axes[0] if sweep else axes

    shown = [r for r in results if r["hosts"] == main_n]
    for r in shown:
        times = sorted(r["host_seconds"])
        done = list(range(1, len(times) + 1))
        ax.step([0] + times, [0] + done, where="post", color=COLORS[r["scenario"]],
                label=f'{LABELS[r["scenario"]]} (last {r["last_seconds"]:.1f} s)')
        ax.plot(times, done, "o", color=COLORS[r["scenario"]], markersize=4)
    ideal = shown[0]["ideal_seconds"]
    ax.axvline(ideal, color="gray", linestyle="--", label=f"one image over one link ({ideal:.1f} s)")
    r0 = shown[0]
    ax.set_title(f'{main_n} hosts, {r0["rate_mbit"]} Mbit/s links, '
                 f'{r0["image_bytes"] / 2**20:.0f} MiB image')
    ax.set_xlabel("seconds since every host started its pull")
    ax.set_ylabel("hosts with the whole image")
    ax.set_ylim(0, main_n + 0.5)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)

    if sweep:
        ax2 = axes[1]
        for name in ("cold", "warm", "direct"):
            pts = sorted((r["hosts"], r["time_ratio"]) for r in results if r["scenario"] == name)
            if pts:
                ax2.plot([p[0] for p in pts], [p[1] for p in pts], "o-",
                         color=COLORS[name], label=LABELS[name])
        ax2.set_xscale("log", base=2)
        ax2.set_xticks(counts)
        ax2.set_xticklabels([str(c) for c in counts])
        ratios = [r["time_ratio"] for r in results]
        if max(ratios) / min(ratios) >= 4:
            ax2.set_yscale("log", base=2)
        # Otherwise a log axis would show no tick between 1 and 2.
        ax2.set_xlabel("pulling hosts")
        ax2.set_ylabel("last host's time / one-link time")
        ax2.set_title("time ratio against cluster size")
        ax2.grid(alpha=0.3, which="both")
        ax2.legend(fontsize=8)

    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
