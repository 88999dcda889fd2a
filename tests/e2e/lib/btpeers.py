#!/usr/bin/python3
"""btpeers.py - scripted BitTorrent peer-wire exchanges for e2e tests.

  btpeers.py serve PORT ADDR...        answer handshakes on every ADDR:PORT
  btpeers.py fetch SRC DST PORT NBYTES [--plain] [--rate BYTES_PER_S]

A fetch connects from SRC to DST:PORT, sends a BEP 3 handshake (or, with
--plain, an HTTP-ish request that is not BitTorrent), then asks for NBYTES
which the server sends back as "piece" messages. Exit 0 when every byte came
back. Standard library only.
"""
import os
import socket
import struct
import sys
import threading
import time

PSTR = b"\x13BitTorrent protocol"
INFO_HASH = bytes(range(20))


def handshake(peer_id):
    return PSTR + bytes(8) + INFO_HASH + peer_id


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("peer closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def serve_conn(conn):
    with conn:
        first = recv_exact(conn, 4)
        if first == PSTR[:4]:
            recv_exact(conn, 68 - 4)
            conn.sendall(handshake(b"-IT0001-serverserver"))
            want, rate = struct.unpack("!II", recv_exact(conn, 8))
        else:  # "GET " + lengths: a non-BitTorrent request
            want, rate = struct.unpack("!II", recv_exact(conn, 8))
        sent = 0
        index = 0
        start = time.monotonic()
        while sent < want:
            block = min(16384, want - sent)
            if rate:
                ahead = sent / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
            # BEP 3 piece message: len, id 7, index, begin, block
            conn.sendall(struct.pack("!IBII", 9 + block, 7, index, 0) + os.urandom(block))
            sent += block
            index += 1
        try:
            conn.recv(1)  # wait for the client to close first
        except OSError:
            pass


def serve(port, addrs):
    socks = []
    for a in addrs:
        fam = socket.AF_INET6 if ":" in a else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a, port))
        s.listen(16)
        socks.append(s)

    def loop(s):
        while True:
            c, _ = s.accept()
            threading.Thread(target=serve_conn, args=(c,), daemon=True).start()

    for s in socks[1:]:
        threading.Thread(target=loop, args=(s,), daemon=True).start()
    print("ready", flush=True)
    loop(socks[0])


def fetch(src, dst, port, nbytes, plain, rate=0):
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(60)
    s.connect((dst, port))
    if plain:
        s.sendall(b"GET " + struct.pack("!II", nbytes, rate))
    else:
        s.sendall(handshake(b"-IT0001-clientclient"))
        reply = recv_exact(s, 68)
        if reply[:20] != PSTR:
            raise SystemExit("bad handshake reply")
        s.sendall(struct.pack("!II", nbytes, rate))
    got = 0
    while got < nbytes:
        length, msg_id, _, _ = struct.unpack("!IBII", recv_exact(s, 13))
        if msg_id != 7:
            raise SystemExit("unexpected message id %d" % msg_id)
        recv_exact(s, length - 9)
        got += length - 9
    s.shutdown(socket.SHUT_WR)
    s.close()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3:])
    elif sys.argv[1] == "fetch":
        rest = sys.argv[6:]
        rate = int(rest[rest.index("--rate") + 1]) if "--rate" in rest else 0
        fetch(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
              "--plain" in rest, rate)
    else:
        raise SystemExit(__doc__)
