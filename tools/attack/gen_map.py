#!/usr/bin/env python3
"""gen_map.py N - a network map with N PIDs (one /24 each, 40 ASes of N/40
PIDs, a LOC per PID) on stdout: big cost maps for the HTTP attack tests
(1,300 PIDs make a 24 MB numerical cost map)."""
import sys

n = int(sys.argv[1])
print("network-map attack-networkmap")
print("tier same-pid 1\ntier same-loc 5\ntier same-as 10\ntier other-as 100")
for i in range(1, n + 1):
    print("pid p%d id %d asn %d loc %d" % (i, i, 64500 + i % 40, i))
    print("prefix p%d 10.%d.%d.0/24" % (i, (i >> 8) & 255, i & 255))
