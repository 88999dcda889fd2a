#!/usr/bin/python3
"""follow_latency.py - change a primary's map N times and time how long each
change takes to show on a follower.

usage: follow_latency.py MAP_FILE PRIMARY_PID FOLLOWER_URL N [--remove]

Each round adds prefix 10.77.<i>.0/24 to PID 'a-metro2' in MAP_FILE, sends
SIGHUP to the primary and polls the follower's /v1/netinfo for an address in
it until the follower names that PID (the follower publishes a map only after
its kernel tries hold it). Prints one line of figures; exits 1 if a change
did not arrive within 5 s.
"""
import http.client
import json
import os
import signal
import statistics
import sys
import time
import urllib.parse


def main():
    path, primary_pid, url, rounds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    with open(path) as f:
        base = f.read()
    added = []
    times = []
    for i in range(rounds):
        added.append("10.77.%d.0/24" % i)
        with open(path + ".tmp", "w") as f:
            f.write(base + "prefix a-metro2 " + " ".join(added) + "\n")
        os.rename(path + ".tmp", path)
        start = time.monotonic()
        os.kill(primary_pid, signal.SIGHUP)
        while True:
            conn.request("GET", "/v1/netinfo?ip=10.77.%d.9" % i)
            body = conn.getresponse().read()
            if json.loads(body).get("pid") == "a-metro2":
                break
            if time.monotonic() - start > 5:
                print("change %d did not reach the follower within 5 s" % i)
                return 1
            time.sleep(0.002)
        times.append((time.monotonic() - start) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
    print("map change -> follower served (after its tries): n=%d min %.1f ms median %.1f ms "
          "p99 %.1f ms max %.1f ms" % (len(times), times[0], statistics.median(times), p99,
                                       times[-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
