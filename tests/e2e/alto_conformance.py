#!/usr/bin/env python3
"""alto_conformance.py - replay RFC 7285's examples against an ALTO server.

  alto_conformance.py IRD_URI

The server must serve maps/rfc7285-example.netmap (the RFC's example
network). Like a real ALTO client this starts from the IRD and finds every
resource through it, then replays the request/response examples of RFC 7285
(network map 11.2.1.7, cost map 11.2.3.7, filtered network map 11.3.1.7,
filtered cost map 11.3.2.7, endpoint property 11.4.1.7, endpoint cost
11.5.1.7) and compares the responses field by field. Version tags differ
by nature; they are checked for form and for agreeing with each other.

Where the RFC's examples contradict the RFC itself, the RFC's normative
text and its full maps win, and the script says so at the check:
- 11.3.1.7 lists 198.51.100.0/24 and 198.51.100.128/24 for PID1 and PID2,
  where the network map of 11.2.1.7 has /25s (the /24s would overlap);
- 11.3.2.7 returns costs 0, 1, 2 for PID1 -> PID1, PID2, PID3 where the
  cost map of 11.2.3.7 has 1, 5, 10 (same order);
- 11.4.1.7 requests "my-default-networkmap.pid" but the map's resource id
  is "my-default-network-map" (as its response says), and asks for
  "priv:ietf-example-prop", which this server does not offer: the replay
  uses the network map's real id and itracker's "priv:itracker-loc", whose
  value exists for PID1 and not for PID3 just like the example's property;
  the verbatim request is also sent and must be refused (11.4.1.3).
- 11.2.3.7 leaves PID3 -> PID3 undefined; itracker derives every pair, so
  exactly that one extra entry is accepted (with the same-pid cost 1).

Exit status 0 if every check passed. Standard library only.
"""
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

FAILURES = []
PASSES = 0

NETMAP_ID = "my-default-network-map"

RFC_NETWORK_MAP = {  # 11.2.1.7
    "PID1": {"ipv4": ["192.0.2.0/24", "198.51.100.0/25"]},
    "PID2": {"ipv4": ["198.51.100.128/25"]},
    "PID3": {"ipv4": ["0.0.0.0/0"], "ipv6": ["::/0"]},
}

RFC_COST_MAP = {  # 11.2.3.7
    "PID1": {"PID1": 1, "PID2": 5, "PID3": 10},
    "PID2": {"PID1": 5, "PID2": 1, "PID3": 15},
    "PID3": {"PID1": 20, "PID2": 15},
}

NUMERICAL = {"cost-mode": "numerical", "cost-metric": "routingcost"}
ORDINAL = {"cost-mode": "ordinal", "cost-metric": "routingcost"}


def check(cond, what, detail=""):
    global PASSES
    if cond:
        PASSES += 1
        print("ok    " + what)
    else:
        FAILURES.append(what)
        print("FAIL  " + what + (": " + detail if detail else ""))
    return cond


def equal(got, want, what):
    return check(got == want, what, "got %s, want %s" % (json.dumps(got), json.dumps(want)))


def request(url, body=None, ctype=None, accept=None):
    """Returns (status, content-type, parsed JSON or None)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    if ctype:
        req.add_header("Content-Type", ctype)
    if accept:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, headers, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, headers, raw = e.code, e.headers, e.read()
    ct = headers.get("Content-Type", "")
    try:
        doc = json.loads(raw) if raw else None
    except ValueError:
        doc = None
    return status, ct, doc


def media(ct):
    return ct.split(";")[0].strip().lower()


def valid_vtag(v, what):
    ok = (isinstance(v, dict) and v.get("resource-id") == NETMAP_ID
          and isinstance(v.get("tag"), str) and 0 < len(v["tag"]) <= 64
          and all(0x21 <= ord(c) <= 0x7E for c in v["tag"]))
    return check(ok, what + ": vtag names %s, tag <= 64 chars U+0021..U+007E (10.3)" % NETMAP_ID,
                 json.dumps(v))


def as_sets(nm):
    """Network map data with prefix lists as sets (order is not meaningful)."""
    if not isinstance(nm, dict):
        return nm
    return {pid: {t: sorted(p) for t, p in (grp or {}).items()} for pid, grp in nm.items()}


def main():
    ird_uri = sys.argv[1]
    st, ct, ird = request(ird_uri, accept="application/alto-directory+json,application/alto-error+json")
    equal(st, 200, "IRD: HTTP status")
    equal(media(ct), "application/alto-directory+json", "IRD: media type (9.2.1)")
    if not isinstance(ird, dict):
        check(False, "IRD: JSON object")
        return
    meta, res = ird.get("meta", {}), ird.get("resources", {})
    equal(meta.get("default-alto-network-map"), NETMAP_ID, "IRD: meta.default-alto-network-map (9.2.2)")
    ctypes = meta.get("cost-types", {})
    names = {}
    for name, ctp in ctypes.items():
        names[(ctp.get("cost-mode"), ctp.get("cost-metric"))] = name
    check(("numerical", "routingcost") in names and ("ordinal", "routingcost") in names,
          "IRD: cost-types define numerical and ordinal routingcost (6.1.1.1)", json.dumps(ctypes))
    for rid, e in res.items():
        check(isinstance(e.get("uri"), str) and isinstance(e.get("media-type"), str),
              "IRD: resource %s has uri and media-type" % rid)
        for n in e.get("capabilities", {}).get("cost-type-names", []):
            check(n in ctypes, "IRD: %s cost-type name %s defined in meta.cost-types" % (rid, n))
        for u in e.get("uses", []):
            check(u in res, "IRD: %s uses %s, a resource of this IRD" % (rid, u))

    def find(media_type, accepts=None, cost_type=None):
        for rid, e in res.items():
            if e.get("media-type") != media_type or e.get("accepts") != accepts:
                continue
            if cost_type and names.get(cost_type) not in e.get("capabilities", {}).get("cost-type-names", []):
                continue
            return rid, urllib.parse.urljoin(ird_uri, e["uri"]), e
        check(False, "IRD: a resource %s accepting %s%s" % (media_type, accepts, " for %s" % (cost_type,) if cost_type else ""))
        return None, None, {}

    # ---- 11.2.1.7 network map
    rid, uri, _ = find("application/alto-networkmap+json")
    equal(rid, NETMAP_ID, "network map: resource id")
    st, ct, nm = request(uri, accept="application/alto-networkmap+json,application/alto-error+json")
    equal(st, 200, "network map: HTTP status")
    equal(media(ct), "application/alto-networkmap+json", "network map: media type")
    nm = nm or {}
    vtag = nm.get("meta", {}).get("vtag")
    valid_vtag(vtag, "network map")
    equal(as_sets(nm.get("network-map")), as_sets(RFC_NETWORK_MAP), "network map: PIDs and prefixes = 11.2.1.7")

    # ---- 11.2.3.7 cost map (numerical), and the ordinal one
    rid, uri, e = find("application/alto-costmap+json", None, ("numerical", "routingcost"))
    equal(e.get("uses"), [NETMAP_ID], "cost map: IRD uses the network map (11.2.3.5)")
    equal(len(e.get("capabilities", {}).get("cost-type-names", [])), 1, "cost map: exactly one cost-type name (11.2.3.4)")
    st, ct, cm = request(uri, accept="application/alto-costmap+json,application/alto-error+json")
    equal(st, 200, "cost map: HTTP status")
    equal(media(ct), "application/alto-costmap+json", "cost map: media type")
    cm = cm or {}
    equal(cm.get("meta", {}).get("dependent-vtags"), [vtag], "cost map: dependent-vtags = [network map vtag] (11.2.3.6)")
    equal(cm.get("meta", {}).get("cost-type"), NUMERICAL, "cost map: meta.cost-type")
    got = cm.get("cost-map", {})
    rfc_part = {s: {d: got.get(s, {}).get(d) for d in row} for s, row in RFC_COST_MAP.items()}
    equal(rfc_part, RFC_COST_MAP, "cost map: every cost of 11.2.3.7")
    extra = sorted((s, d) for s, row in got.items() for d in row if d not in RFC_COST_MAP.get(s, {}))
    equal(extra, [("PID3", "PID3")], "cost map: only extra entry is PID3->PID3 (undefined in the RFC)")
    equal(got.get("PID3", {}).get("PID3"), 1, "cost map: PID3->PID3 is the same-pid tier")
    numerical_full = got

    rid, uri, _ = find("application/alto-costmap+json", None, ("ordinal", "routingcost"))
    st, ct, om = request(uri)
    equal(st, 200, "ordinal cost map: HTTP status")
    om = om or {}
    equal(om.get("meta", {}).get("cost-type"), ORDINAL, "ordinal cost map: meta.cost-type")
    equal(om.get("meta", {}).get("dependent-vtags"), [vtag], "ordinal cost map: dependent-vtags")
    pairs = [(s, d) for s, row in numerical_full.items() for d in row]
    ordv = {(s, d): om.get("cost-map", {}).get(s, {}).get(d) for s, d in pairs}
    check(all(isinstance(v, int) and v >= 0 for v in ordv.values()),
          "ordinal cost map: non-negative integers for every pair (6.1.2.2)", json.dumps(om.get("cost-map")))
    consistent = all((numerical_full[a[0]][a[1]] < numerical_full[b[0]][b[1]]) == (ordv[a] < ordv[b])
                     for a in pairs for b in pairs if ordv[a] is not None and ordv[b] is not None)
    check(consistent, "ordinal cost map: ranks order the m*n entries as the costs do (6.2)")
    equal(sorted(set(ordv.values())), [1, 2, 3, 4, 5], "ordinal cost map: dense ranks 1..5 for costs 1,5,10,15,20")

    # ---- 11.3.1.7 filtered network map
    rid, uri, e = find("application/alto-networkmap+json", "application/alto-networkmapfilter+json")
    st, ct, fm = request(uri, {"pids": ["PID1", "PID2"]}, "application/alto-networkmapfilter+json",
                         "application/alto-networkmap+json,application/alto-error+json")
    equal(st, 200, "filtered network map: HTTP status")
    equal(media(ct), "application/alto-networkmap+json", "filtered network map: media type")
    fm = fm or {}
    equal(fm.get("meta", {}).get("vtag"), vtag, "filtered network map: vtag of the full map (11.3.1.6)")
    # The RFC example's /24s are a typo for 11.2.1.7's /25s (see the header).
    equal(as_sets(fm.get("network-map")), as_sets({k: RFC_NETWORK_MAP[k] for k in ("PID1", "PID2")}),
          "filtered network map: PID1, PID2 as in 11.2.1.7")
    st, ct, fm = request(uri, {"pids": ["PID3", "PID9"], "address-types": ["ipv6"]},
                         "application/alto-networkmapfilter+json")
    equal((fm or {}).get("network-map"), {"PID3": {"ipv6": ["::/0"]}},
          "filtered network map: unknown PID ignored, ipv6 only")

    # ---- 11.3.2.7 filtered cost map, and constraints
    rid, uri, e = find("application/alto-costmap+json", "application/alto-costmapfilter+json")
    check(e.get("capabilities", {}).get("cost-constraints") is True, "filtered cost map: cost-constraints capability")
    req = {"cost-type": NUMERICAL, "pids": {"srcs": ["PID1"], "dsts": ["PID1", "PID2", "PID3"]}}
    st, ct, fc = request(uri, req, "application/alto-costmapfilter+json",
                         "application/alto-costmap+json,application/alto-error+json")
    equal(st, 200, "filtered cost map: HTTP status")
    equal(media(ct), "application/alto-costmap+json", "filtered cost map: media type")
    fc = fc or {}
    equal(fc.get("meta", {}).get("dependent-vtags"), [vtag], "filtered cost map: dependent-vtags (11.3.2.6)")
    equal(fc.get("meta", {}).get("cost-type"), NUMERICAL, "filtered cost map: meta.cost-type")
    # 11.3.2.7 shows 0, 1, 2: the same order as 11.2.3.7's 1, 5, 10, which win.
    row = fc.get("cost-map", {}).get("PID1", {})
    equal(fc.get("cost-map"), {"PID1": RFC_COST_MAP["PID1"]}, "filtered cost map: PID1 row of 11.2.3.7")
    equal(sorted(row, key=row.get) if row else [], ["PID1", "PID2", "PID3"], "filtered cost map: order of 11.3.2.7 (0 < 1 < 2)")
    cases = [
        (["le 5"], {"srcs": ["PID1"], "dsts": []}, {"PID1": {"PID1": 1, "PID2": 5}}),
        (["gt 1", "lt 15"], None, {"PID1": {"PID2": 5, "PID3": 10}, "PID2": {"PID1": 5}}),
        (["eq 15"], {"srcs": [], "dsts": ["PID2", "PID3", "nope"]}, {"PID2": {"PID3": 15}, "PID3": {"PID2": 15}}),
        (["ge 100"], None, {}),
    ]
    for cons, pids, want in cases:
        body = {"cost-type": NUMERICAL, "constraints": cons}
        if pids is not None:
            body["pids"] = pids
        st, ct, r = request(uri, body, "application/alto-costmapfilter+json")
        equal((r or {}).get("cost-map"), want, "filtered cost map: constraints %s pids %s (all must hold)" % (cons, pids))
    st, ct, r = request(uri, {"cost-type": ORDINAL, "constraints": ["le 1"]}, "application/alto-costmapfilter+json")
    equal((r or {}).get("cost-map"), {"PID1": {"PID1": 1}, "PID2": {"PID2": 1}, "PID3": {"PID3": 1}},
          "filtered cost map: ordinal with constraint le 1 (best entries)")
    equal((r or {}).get("meta", {}).get("cost-type"), ORDINAL, "filtered cost map: ordinal meta.cost-type")

    # ---- 11.4.1.7 endpoint property
    rid, uri, e = find("application/alto-endpointprop+json", "application/alto-endpointpropparams+json")
    props = e.get("capabilities", {}).get("prop-types", [])
    check(NETMAP_ID + ".pid" in props, "endpoint property: prop-types offer %s.pid (7.1.1)" % NETMAP_ID, json.dumps(props))
    check(all(p.startswith("priv:") and len(p) > 5 for p in props if "." not in p),
          "endpoint property: private properties use the priv: prefix (10.8.2)")
    req = {"properties": [NETMAP_ID + ".pid", "priv:itracker-loc"],
           "endpoints": ["ipv4:192.0.2.34", "ipv4:203.0.113.129"]}
    st, ct, ep = request(uri, req, "application/alto-endpointpropparams+json",
                         "application/alto-endpointprop+json,application/alto-error+json")
    equal(st, 200, "endpoint property: HTTP status")
    equal(media(ct), "application/alto-endpointprop+json", "endpoint property: media type")
    ep = ep or {}
    equal(ep.get("meta", {}).get("dependent-vtags"), [vtag], "endpoint property: dependent-vtags (11.4.1.6)")
    equal(ep.get("endpoint-properties"), {
        "ipv4:192.0.2.34": {NETMAP_ID + ".pid": "PID1", "priv:itracker-loc": "1"},
        "ipv4:203.0.113.129": {NETMAP_ID + ".pid": "PID3"},
    }, "endpoint property: 11.4.1.7 (undefined property omitted for that endpoint only)")
    verbatim = {"properties": ["my-default-networkmap.pid", "priv:ietf-example-prop"],
                "endpoints": ["ipv4:192.0.2.34", "ipv4:203.0.113.129"]}
    st, ct, r = request(uri, verbatim, "application/alto-endpointpropparams+json")
    equal((st, media(ct), (r or {}).get("meta", {}).get("code"), (r or {}).get("meta", {}).get("field")),
          (400, "application/alto-error+json", "E_INVALID_FIELD_VALUE", "properties"),
          "endpoint property: the RFC's verbatim request names unsupported properties (11.4.1.3)")

    # ---- 11.5.1.7 endpoint cost (ordinal: a ranking)
    rid, uri, e = find("application/alto-endpointcost+json", "application/alto-endpointcostparams+json")
    check("uses" not in e, "endpoint cost: IRD entry without uses (11.5.1.5)")
    check(e.get("capabilities", {}).get("cost-constraints") is True, "endpoint cost: cost-constraints capability")
    req = {"cost-type": ORDINAL, "endpoints": {"srcs": ["ipv4:192.0.2.2"],
                                               "dsts": ["ipv4:192.0.2.89", "ipv4:198.51.100.34", "ipv4:203.0.113.45"]}}
    st, ct, ec = request(uri, req, "application/alto-endpointcostparams+json",
                         "application/alto-endpointcost+json,application/alto-error+json")
    equal(st, 200, "endpoint cost: HTTP status")
    equal(media(ct), "application/alto-endpointcost+json", "endpoint cost: media type")
    ec = ec or {}
    equal(ec.get("meta"), {"cost-type": ORDINAL}, "endpoint cost: meta is the cost-type (11.5.1.6)")
    equal(ec.get("endpoint-cost-map"), {"ipv4:192.0.2.2": {"ipv4:192.0.2.89": 1, "ipv4:198.51.100.34": 2,
                                                           "ipv4:203.0.113.45": 3}},
          "endpoint cost: 11.5.1.7 ranking")
    req["cost-type"] = NUMERICAL
    req["constraints"] = ["lt 10"]
    st, ct, ec = request(uri, req, "application/alto-endpointcostparams+json")
    equal((ec or {}).get("endpoint-cost-map"), {"ipv4:192.0.2.2": {"ipv4:192.0.2.89": 1, "ipv4:198.51.100.34": 1}},
          "endpoint cost: numerical PID costs with constraint lt 10")
    # No srcs: the client's own address (11.5.1.3); 127.0.0.1 is in PID3.
    st, ct, ec = request(uri, {"cost-type": NUMERICAL, "endpoints": {"dsts": ["ipv4:192.0.2.1", "ipv6:2001:db8::1"]}},
                         "application/alto-endpointcostparams+json")
    equal((ec or {}).get("endpoint-cost-map"), {"ipv4:127.0.0.1": {"ipv4:192.0.2.1": 20, "ipv6:2001:db8::1": 1}},
          "endpoint cost: missing srcs = the client's address")

    # ---- 8.5 errors
    costmap_uri = find("application/alto-costmap+json", "application/alto-costmapfilter+json")[1]
    error_cases = [
        (b"{\"cost-type\": ", "E_SYNTAX", None, None),
        ({"pids": {"srcs": [], "dsts": []}}, "E_MISSING_FIELD", "cost-type", None),
        ({"cost-type": {"cost-mode": "numerical"}}, "E_MISSING_FIELD", "cost-type/cost-metric", None),
        ({"cost-type": "numerical"}, "E_INVALID_FIELD_TYPE", "cost-type", None),
        ({"cost-type": {"cost-mode": "foo", "cost-metric": "routingcost"}}, "E_INVALID_FIELD_VALUE", "cost-type/cost-mode", "foo"),
        ({"cost-type": NUMERICAL, "constraints": ["le 5", 7]}, "E_INVALID_FIELD_VALUE", "constraints", "7"),
    ]
    for body, code, field, value in error_cases:
        st, ct, r = request(costmap_uri, body, "application/alto-costmapfilter+json")
        m = (r or {}).get("meta", {})
        equal((st, media(ct), m.get("code"), m.get("field"), m.get("value")),
              (400, "application/alto-error+json", code, field, value), "error %s %s (8.5.2)" % (code, field or ""))
    st, ct, r = request(costmap_uri, {"cost-type": NUMERICAL}, "application/json")
    equal((st, media(ct), (r or {}).get("meta", {}).get("code")), (415, "application/alto-error+json", "E_SYNTAX"),
          "error: wrong request media type (8.3.2)")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # a crash is a failure, not a pass
        check(False, "conformance client raised %r" % (exc,))
    print("alto conformance: %d passed, %d failed" % (PASSES, len(FAILURES)))
    sys.exit(1 if FAILURES else 0)
