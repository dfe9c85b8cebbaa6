#!/usr/bin/python3
"""libtorrent as a live peer on loopback, for bay's interop tests and
comparison runs. Run it with /usr/bin/python3 (python3-libtorrent).

  seed TORRENT SAVE_DIR
      Seeds the torrent from SAVE_DIR (which holds its file) on
      127.0.0.1, on a port the kernel picks. Once libtorrent has checked
      the data and is seeding, prints one JSON line
      {"port": P, "info_hash": HEX}. Serves until its stdin closes, then
      prints {"uploaded": BYTES} and exits.
  get TORRENT SAVE_DIR PEER [PEER...]
      Downloads the torrent into SAVE_DIR from the given host:port peers
      (dialled with connect_peer) and prints
      {"bytes": N, "seconds": S, "clients": [...]} when libtorrent reports
      it finished; "clients" are the names the peers gave in their BEP 10
      handshakes (the "v" key), read from libtorrent's peer log, which it
      keeps only with --names (the log costs time in a comparison run).

Options (before the subcommand's arguments or after):
  --timeout SECONDS   give up (exit 1) after this long; default 120
  --verbose           print libtorrent's peer and error alerts on stderr
  --fast              libtorrent's high_performance_seed settings
  --names             (get) record the peers' BEP 10 client names

Both use TCP only (uTP off: libtorrent tries uTP first and stalls
against TCP-only peers), no DHT, LSD, UPnP or NAT-PMP, and accept several
connections from one IP (every peer here is 127.0.0.1). Waits are on
libtorrent's alerts with deadlines; nothing sleeps to synchronise.
"""

import argparse
import json
import os
import re
import sys
import threading
import time

import libtorrent as lt


def session(fast, verbose, names=False):
    settings = lt.high_performance_seed() if fast else lt.default_settings()
    settings.update({
        "listen_interfaces": "127.0.0.1:0",
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert_category.status
        | lt.alert_category.error
        | (lt.alert_category.peer | lt.alert_category.connect if verbose else 0)
        | (lt.alert_category.peer_log if names else 0),
    })
    return lt.session(settings)


def add(ses, torrent_path, save_dir):
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent_path)
    params.save_path = save_dir
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    return ses.add_torrent(params)


def pump(ses, deadline, verbose, until, tick=None, every=0.5, seen=None):
    """Handles alerts until until(alert) is true for one; returns it.
    tick(), when given, runs at least every `every` seconds; seen(alert),
    when given, looks at every alert."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("libtorrent did not get there in time")
        ses.wait_for_alert(int(min(left, every) * 1000))
        if tick:
            tick()
        for alert in ses.pop_alerts():
            if seen:
                seen(alert)
            if verbose and not isinstance(alert, lt.peer_log_alert):
                sys.stderr.write("lt: %s: %s\n" % (type(alert).__name__, alert.message()))
            if isinstance(alert, lt.torrent_error_alert):
                raise RuntimeError(alert.message())
            if until(alert):
                return alert


def listen_port(ses, deadline, verbose):
    alert = pump(ses, deadline, verbose, lambda a: isinstance(a, lt.listen_succeeded_alert)
                 and a.socket_type == lt.socket_type_t.tcp)
    return alert.port


def seed(args):
    ses = session(args.fast, args.verbose)
    deadline = time.monotonic() + args.timeout
    port = listen_port(ses, deadline, args.verbose)
    handle = add(ses, args.torrent, args.save_dir)
    if not handle.status().is_seeding:
        pump(ses, deadline, args.verbose, lambda a: handle.status().is_seeding)
    info_hash = str(handle.info_hashes().v2)
    print(json.dumps({"port": port, "info_hash": info_hash}), flush=True)
    closed = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        closed.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    while not closed.is_set():
        ses.wait_for_alert(200)
        for alert in ses.pop_alerts():
            if args.verbose:
                sys.stderr.write("lt: %s: %s\n" % (type(alert).__name__, alert.message()))
    print(json.dumps({"uploaded": handle.status().total_payload_upload}), flush=True)


def parse_peer(text):
    host, _, port = text.rpartition(":")
    return (host.strip("[]"), int(port))


# libtorrent logs an incoming BEP 10 handshake as
# `<== EXTENDED_HANDSHAKE [ { ..., 'v': 'NAME' } ]`.
CLIENT_NAME = re.compile(r"<== EXTENDED_HANDSHAKE \[.*'v': '([^']*)'")


def get(args):
    ses = session(args.fast, args.verbose, names=args.names)
    deadline = time.monotonic() + args.timeout
    listen_port(ses, deadline, args.verbose)
    started = time.monotonic()
    handle = add(ses, args.torrent, args.save_dir)
    for peer in args.peers:
        handle.connect_peer(parse_peer(peer))
    clients = set()

    def seen(alert):
        if isinstance(alert, lt.peer_log_alert):
            m = CLIENT_NAME.search(alert.message())
            if m:
                clients.add(m.group(1))

    pump(ses, deadline, args.verbose, lambda a: isinstance(a, lt.torrent_finished_alert),
         seen=seen)
    seconds = time.monotonic() - started
    status = handle.status()
    print(json.dumps({
        "bytes": status.total_wanted,
        "seconds": seconds,
        "downloaded": status.total_payload_download,
        "clients": sorted(clients),
    }), flush=True)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--names", action="store_true")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("seed")
    s.add_argument("torrent")
    s.add_argument("save_dir")
    g = sub.add_parser("get")
    g.add_argument("torrent")
    g.add_argument("save_dir")
    g.add_argument("peers", nargs="+")
    for p in (s, g):
        p.add_argument("--timeout", type=float, default=argparse.SUPPRESS)
        p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS)
        p.add_argument("--fast", action="store_true", default=argparse.SUPPRESS)
        p.add_argument("--names", action="store_true", default=argparse.SUPPRESS)
    args = parser.parse_args(argv[1:])
    os.makedirs(args.save_dir, exist_ok=True)
    if args.cmd == "seed":
        seed(args)
    else:
        get(args)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except (TimeoutError, RuntimeError) as e:
        sys.stderr.write("lt_peer: %s\n" % e)
        sys.exit(1)
