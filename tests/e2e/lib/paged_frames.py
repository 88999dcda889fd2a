#!/usr/bin/python3
"""paged_frames.py - send frames whose IP and TCP headers lie outside the
skb's linear part, as some drivers and AF_PACKET senders build them.

  paged_frames.py IFACE DST_MAC SRC_IP DST_IP COUNT PAYLOAD_BYTES

AF_PACKET with PACKET_VNET_HDR takes a virtio-net header whose hdr_len
says how much of the frame goes into the linear part; a frame longer than
a page then carries everything past hdr_len in page fragments. With
hdr_len 14 only the Ethernet header is linear, so the receiving veth's TC
program finds the IP header beyond data_end. Prints the frame length.
The TCP segment goes to a closed port with no valid checksum: the
receiving stack drops it after the data plane has seen it.
"""
import socket
import struct
import sys

SOL_PACKET = 263
PACKET_VNET_HDR = 15


def ip_checksum(header):
    total = sum(struct.unpack("!%dH" % (len(header) // 2), header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(dst_mac, src_mac, src_ip, dst_ip, payload_len):
    tcp = struct.pack("!HHIIBBHHH", 40000, 5555, 1, 0, 5 << 4, 0x18, 65535, 0, 0)
    tot_len = 20 + len(tcp) + payload_len
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tot_len, 1, 0x4000, 64, socket.IPPROTO_TCP, 0,
                     socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + tcp + b"\0" * payload_len


def main(argv):
    if len(argv) != 7:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    ifname, dst, src_ip, dst_ip, count, payload_len = argv[1:]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.bind((ifname, 0))
    src_mac = s.getsockname()[4]
    f = frame(bytes.fromhex(dst.replace(":", "")), src_mac, src_ip, dst_ip, int(payload_len))
    # struct virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
    vnet = struct.pack("<BBHHHH", 0, 0, 14, 0, 0, 0)
    for _ in range(int(count)):
        s.send(vnet + f)
    print(len(f))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
