#!/usr/bin/python3
"""demo_swarm_client.py - one BitTorrent client of `make demo`'s swarm:
libtorrent (Debian's python3-libtorrent) that finds its peers only through
the torrent's tracker (no DHT, LSD, PEX, UPnP), over TCP, opening its own
connections with the plain peer-wire handshake so the data plane can
recognize them (it still accepts encrypted ones).

  demo_swarm_client.py TORRENT DIR IP PORT MARKER

Downloads into (or seeds from) DIR, listening on IP:PORT. When it has the
whole file, checked piece by piece against the torrent's hashes, it creates
MARKER, then keeps seeding until killed.
"""
import sys
import time

import libtorrent as lt


def main(argv):
    if len(argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    torrent, save, ip, port, marker = argv[1], argv[2], argv[3], int(argv[4]), argv[5]
    ses = lt.session(
        {
            "listen_interfaces": "%s:%d" % (ip, port),
            "outgoing_interfaces": ip,
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
            "out_enc_policy": 2,  # pe_disabled: plain handshake
            "in_enc_policy": 1,  # pe_enabled
            "alert_mask": 0,
            "user_agent": "itracker-demo",
        }
    )
    # the session has the default plugins (ut_pex among them): switch peer
    # exchange off per torrent so the tracker stays the only source of peers
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent)
    params.save_path = save
    params.flags |= lt.torrent_flags.disable_pex | lt.torrent_flags.disable_dht
    params.flags |= lt.torrent_flags.disable_lsd
    h = ses.add_torrent(params)
    while not h.status().is_seeding:
        time.sleep(0.1)
    with open(marker, "w") as f:
        f.write("%d\n" % h.status().total_wanted)
    print("complete", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
