#!/usr/bin/python3
"""lt_transfer.py - a real BitTorrent transfer with libtorrent (Debian's
python3-libtorrent), for e2e tests and the demo. Peers are connected
directly (no tracker, DHT, LSD, UPnP), so the test controls who meets whom.

  lt_transfer.py make FILE TORRENT             create a .torrent for FILE
  lt_transfer.py seed TORRENT DIR IP PORT      seed DIR/<name> until killed
  lt_transfer.py leech TORRENT DIR IP PEER_IP PEER_PORT [--utp] [--timeout S]

Options: --utp allows uTP (default: TCP only, plaintext handshake, so the
transfer's flows are plain peer wire).
"""
import os
import sys
import time

import libtorrent as lt


def settings(ip, port, utp):
    s = {
        "listen_interfaces": "%s:%d" % (("[%s]" % ip) if ":" in ip else ip, port),
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": utp,
        "enable_incoming_utp": utp,
        "enable_outgoing_tcp": True,
        "enable_incoming_tcp": True,
        "out_enc_policy": 2,  # pe_disabled: plaintext handshake
        "in_enc_policy": 1,  # pe_enabled
        "allow_multiple_connections_per_ip": True,
        "alert_mask": 0,
        "outgoing_interfaces": ip,
        "user_agent": "itracker-e2e",
    }
    return s


def make(path, torrent):
    fs = lt.file_storage()
    lt.add_files(fs, path)
    t = lt.create_torrent(fs, 16384 * 4)
    lt.set_piece_hashes(t, os.path.dirname(os.path.abspath(path)))
    with open(torrent, "wb") as f:
        f.write(lt.bencode(t.generate()))


def session_with(torrent, save, ip, port, utp):
    ses = lt.session(settings(ip, port, utp))
    info = lt.torrent_info(torrent)
    h = ses.add_torrent({"ti": info, "save_path": save})
    return ses, h


def seed(torrent, save, ip, port):
    ses, h = session_with(torrent, save, ip, port, True)
    h.force_recheck()
    print("seeding", flush=True)
    while True:
        time.sleep(1)


def leech(torrent, save, ip, peer_ip, peer_port, utp, timeout):
    ses, h = session_with(torrent, save, ip, 0, utp)
    deadline = time.time() + timeout
    last_connect = 0
    while time.time() < deadline:
        st = h.status()
        if st.is_seeding:
            print("complete %d bytes" % st.total_wanted, flush=True)
            return 0
        if time.time() - last_connect > 2 and st.num_peers == 0:
            h.connect_peer((peer_ip, peer_port))
            last_connect = time.time()
        time.sleep(0.1)
    print("timeout: progress %.3f" % h.status().progress, file=sys.stderr)
    return 1


def main(argv):
    if argv[1] == "make":
        make(argv[2], argv[3])
        return 0
    if argv[1] == "seed":
        seed(argv[2], argv[3], argv[4], int(argv[5]))
        return 0
    if argv[1] == "leech":
        timeout = 60
        if "--timeout" in argv:
            timeout = float(argv[argv.index("--timeout") + 1])
        return leech(argv[2], argv[3], argv[4], argv[5], int(argv[6]), "--utp" in argv, timeout)
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
