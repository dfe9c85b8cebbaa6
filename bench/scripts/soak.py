#!/usr/bin/env python3
"""Driver of bench/scripts/soak.sh: pushes BLOBS distinct blobs to the
registry, pulls them through bay-proxy in rounds, samples both processes
after each round, then watches the tracker's request log at rest.

Usage: soak.py REGISTRY PROXY TRACKER PROXY_PID TRACKER_PID TRACKER_LOG
Environment: BLOBS, ROUND, BLOB_KIB, REST_MIN, WINDOW_MIN.
"""

import hashlib
import http.client
import json
import os
import re
import sys
import time


def env(name, default):
    return int(os.environ.get(name, default))


def conn(addr):
    host, port = addr.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=120)


def push(registry, blobs):
    c = conn(registry)
    for i, data in enumerate(blobs):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        c.request("POST", "/v2/soak/blob/blobs/uploads/", headers={"Content-Length": "0"})
        r = c.getresponse()
        r.read()
        if r.status != 202:
            sys.exit(f"upload start answered {r.status}")
        location = r.getheader("Location")
        sep = "&" if "?" in location else "?"
        c.request("PUT", f"{location}{sep}digest={digest}", body=data,
                  headers={"Content-Type": "application/octet-stream"})
        r = c.getresponse()
        r.read()
        if r.status != 201:
            sys.exit(f"upload of blob {i} answered {r.status}")
        yield digest


def proc(pid):
    status = open(f"/proc/{pid}/status").read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds, threads


def metrics(addr):
    c = conn(addr)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def requests_in(log, since, until):
    """Tracker access-log lines (one per request) between two times."""
    count = 0
    for line in open(log, errors="replace"):
        if "bay::access" not in line:
            continue
        stamp = line[:26]
        try:
            t = time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        except ValueError:
            continue
        if since <= t < until:
            count += 1
    return count


def main():
    registry, proxy, tracker, proxy_pid, tracker_pid, tracker_log = sys.argv[1:7]
    n, per_round, kib = env("BLOBS", 1000), env("ROUND", 100), env("BLOB_KIB", 64)
    rest_min, window_min = env("REST_MIN", 8), env("WINDOW_MIN", 5)
    blobs = [os.urandom(kib * 1024) for _ in range(n)]
    print(f"== pushing {n} blobs of {kib} KiB")
    digests = list(push(registry, blobs))

    print(f"== pulling them through bay-proxy, {per_round} a round")
    rows = []
    head = f"{'blobs':>6} {'proxy RSS MiB':>14} {'fds':>5} {'threads':>8} {'tracker RSS MiB':>16} {'fds':>5} {'threads':>8} {'peer conns':>11}"
    print(head)
    c = conn(proxy)
    started = time.time()
    for i, (digest, data) in enumerate(zip(digests, blobs), 1):
        c.request("GET", f"/v2/soak/blob/blobs/{digest}")
        r = c.getresponse()
        body = r.read()
        if r.status != 200 or hashlib.sha256(body).hexdigest() != digest[7:]:
            sys.exit(f"blob {i}: status {r.status}, wrong bytes")
        if i % per_round == 0:
            p, t = proc(proxy_pid), proc(tracker_pid)
            conns = metrics(proxy).get("bay_peer_connections", 0)
            row = {"blobs": i, "proxy": p, "tracker": t, "connections": conns}
            rows.append(row)
            print(f"{i:>6} {p[0] / 1024:>14.1f} {p[1]:>5} {p[2]:>8} {t[0] / 1024:>16.1f} {t[1]:>5} {t[2]:>8} {conns:>11.0f}")
    pulled = time.time() - started
    m = metrics(proxy)
    swarm = m.get("bay_proxy_swarm_reads_total", 0)
    registry_reads = m.get("bay_proxy_registry_reads_total", 0)
    print(f"   {n} blobs in {pulled:.1f} s; from the swarm {swarm:.0f}, from the registry {registry_reads:.0f}")

    print(f"== at rest for {rest_min} min (requests to the tracker per minute)")
    rest_start = time.time()
    per_minute = []
    for minute in range(rest_min):
        time.sleep(60)
        now = time.time()
        count = requests_in(tracker_log, now - 60, now)
        per_minute.append(count)
        p, t = proc(proxy_pid), proc(tracker_pid)
        print(f"   minute {minute + 1:>2}: {count:>5} requests; proxy RSS {p[0] / 1024:.1f} MiB, {p[1]} fds; tracker RSS {t[0] / 1024:.1f} MiB")
    last = per_minute[-window_min:]
    rate = sum(last) / len(last)
    print(f"\n   at rest (last {window_min} min): {rate:.2f} requests a minute from one host holding {n} blobs")
    json.dump({"blobs": n, "blob_kib": kib, "rounds": rows, "pull_seconds": pulled,
               "swarm_reads": swarm, "registry_reads": registry_reads,
               "rest_requests_per_minute": per_minute, "rest_rate": rate,
               "rest_started": rest_start}, open(os.environ.get("SOAK_JSON", "/dev/null"), "w"), indent=1)


if __name__ == "__main__":
    main()
