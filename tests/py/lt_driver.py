#!/usr/bin/python3
"""Drives libtorrent (Debian's python3-libtorrent) for bay's cross-checks.

Run it with /usr/bin/python3: the python3 first on PATH may lack the
module. Every subcommand prints one JSON object on stdout and exits 0, or
prints the error on stderr and exits non-zero.

  info TORRENT
      What libtorrent reads from a .torrent: v2 info hash, piece length,
      number of pieces, private flag, trackers, web seeds, and per file its
      path, size, pieces root and the piece-layer hashes libtorrent holds
      (for a file of one piece, libtorrent holds its root in their place).
  make FILE OUT [PIECE_LENGTH]
      Makes a v2-only torrent of FILE with libtorrent and writes it to OUT.
  check TORRENT SAVE_DIR [TIMEOUT_SECONDS]
      Adds the torrent to an offline session whose save path holds the
      data and lets libtorrent hash it against the torrent's piece layers;
      reports how many pieces it accepted. Waits on libtorrent's alerts
      with a deadline; never sleeps.
"""

import json
import os
import sys
import time

import libtorrent as lt


def piece_layers_seen(ti):
    """The piece layers libtorrent keeps for ti, by pieces root (hex).

    create_torrent(ti) copies what torrent_info parsed, so generating it
    back shows exactly the hashes libtorrent will check pieces with.
    """
    generated = lt.create_torrent(ti).generate()
    layers = generated.get(b"piece layers", {})
    return {
        root.hex(): [layer[i:i + 32].hex() for i in range(0, len(layer), 32)]
        for root, layer in layers.items()
    }


def info(path):
    ti = lt.torrent_info(path)
    hashes = ti.info_hashes()
    files = ti.files()
    layers = piece_layers_seen(ti)
    out_files = []
    for i in range(files.num_files()):
        root = str(files.root(i))
        size = files.file_size(i)
        if size > ti.piece_length():
            layer = layers.get(root)
        elif size > 0:
            layer = [root]
        else:
            layer = []
        out_files.append({
            "path": files.file_path(i),
            "size": size,
            "pieces_root": root,
            "piece_layer": layer,
        })
    return {
        "info_hash_v2": str(hashes.v2) if hashes.has_v2() else None,
        "has_v1": hashes.has_v1(),
        "name": ti.name(),
        "piece_length": ti.piece_length(),
        "num_pieces": ti.num_pieces(),
        "total_size": ti.total_size(),
        "private": ti.priv(),
        "trackers": [t.url for t in ti.trackers()],
        "web_seeds": [w["url"] for w in ti.web_seeds()],
        "files": out_files,
    }


def make(file_path, out_path, piece_length=0):
    fs = lt.file_storage()
    lt.add_files(fs, file_path)
    ct = lt.create_torrent(fs, piece_length, flags=lt.create_torrent.v2_only)
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(file_path)))
    with open(out_path, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    return info(out_path)


def offline_session():
    return lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "alert_mask": lt.alert_category.status | lt.alert_category.error,
    })


def check(torrent_path, save_dir, timeout=60.0):
    ses = offline_session()
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent_path)
    params.save_path = save_dir
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags |= lt.torrent_flags.paused
    handle = ses.add_torrent(params)
    handle.force_recheck()
    handle.resume()
    deadline = time.monotonic() + timeout
    checked = False
    while not checked:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("libtorrent did not finish checking in time")
        ses.wait_for_alert(int(min(left, 1.0) * 1000))
        for alert in ses.pop_alerts():
            if isinstance(alert, lt.torrent_checked_alert):
                checked = True
            elif isinstance(alert, lt.torrent_error_alert):
                raise RuntimeError(alert.message())
    status = handle.status()
    pieces = list(status.pieces)
    return {
        "num_pieces": len(pieces),
        "have": sum(1 for p in pieces if p),
        "missing": [i for i, p in enumerate(pieces) if not p],
        "is_seeding": status.is_seeding,
    }


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "info" and len(args) == 1:
        result = info(args[0])
    elif cmd == "make" and len(args) in (2, 3):
        result = make(args[0], args[1], int(args[2]) if len(args) == 3 else 0)
    elif cmd == "check" and len(args) in (2, 3):
        result = check(args[0], args[1], float(args[2]) if len(args) == 3 else 60.0)
    else:
        raise SystemExit(__doc__)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
