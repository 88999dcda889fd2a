#!/usr/bin/python3
"""demo_swarm_peers.py - helpers for `make demo`'s swarm step (stdlib only).

  demo_swarm_peers.py scrape-query TORRENT
      print the query string of a scrape for TORRENT (its escaped info_hash)
  demo_swarm_peers.py announce-query TORRENT PORT NUMWANT
      print the query string of a leecher's announce for TORRENT: its
      percent-escaped info_hash, a fixed demo peer_id, PORT, left = the
      torrent's length, NUMWANT, compact=0 (a readable list of dictionaries)
  demo_swarm_peers.py explain CLIENT RANK_URL NETINFO_URL < ANSWER
      decode a tracker's bencoded announce ANSWER and print the peers it
      names in the tracker's order, each with its PID and the cost from
      CLIENT's PID, as itrackerd's own POST /v1/rank reports them
"""
import hashlib
import json
import sys
import urllib.parse
import urllib.request

from bencode import bdecode


def info_span(data):
    """The raw bytes of the torrent's info dictionary (what info_hash hashes)."""
    i = 1
    while data[i : i + 1] != b"e":
        key, i = bdecode(data, i)
        start = i
        _, i = bdecode(data, i)
        if key == b"info":
            return data[start:i]
    raise ValueError("torrent has no info dictionary")


def read_info(torrent):
    """(info_hash, info dictionary) of a .torrent file."""
    with open(torrent, "rb") as f:
        raw_info = info_span(f.read())
    return hashlib.sha1(raw_info).digest(), bdecode(raw_info)[0]


def announce_query(torrent, port, numwant):
    info_hash, info = read_info(torrent)
    if b"length" in info:
        length = info[b"length"]
    else:
        length = sum(f[b"length"] for f in info[b"files"])
    query = {
        "info_hash": info_hash,
        "peer_id": b"-DEMO01-lookatpeers!",
        "port": port,
        "uploaded": 0,
        "downloaded": 0,
        "left": length,
        "numwant": numwant,
        "compact": 0,
    }
    print(urllib.parse.urlencode(query))


def fetch_json(url, body=None):
    req = urllib.request.Request(url, data=body)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def explain(client, rank_url, netinfo_url):
    answer, _ = bdecode(sys.stdin.buffer.read())
    if b"failure reason" in answer:
        print("client %s: tracker refused: %s" % (client, answer[b"failure reason"].decode()))
        return 1
    peers = [(p[b"ip"].decode(), p[b"port"]) for p in answer.get(b"peers", [])]
    me = fetch_json(netinfo_url + "?ip=" + client)
    # itrackerd's ranking of exactly these peers for this client: the same
    # map and costs the tracker used; only PID and cost are read from it.
    ranked = fetch_json(
        rank_url,
        json.dumps(
            {
                "client": client,
                "peers": ["%s:%d" % p for p in peers],
                "numwant": len(peers),
            }
        ).encode(),
    )
    where = {(p["ip"], p["port"]): (p["pid"], p["cost"]) for p in ranked["peers"]}
    names = []
    for p in peers:
        pid, cost = where.get(p, (None, None))
        names.append("%s (%s, cost %s)" % (p[0], pid or "no PID", cost if cost is not None else "?"))
    print("client %s (%s): %d peers: %s" % (client, me["pid"] or "no PID", len(peers), ", ".join(names)))
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "scrape-query":
        print(urllib.parse.urlencode({"info_hash": read_info(argv[2])[0]}))
        return 0
    if len(argv) == 5 and argv[1] == "announce-query":
        announce_query(argv[2], int(argv[3]), int(argv[4]))
        return 0
    if len(argv) == 5 and argv[1] == "explain":
        return explain(argv[2], argv[3], argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
