"""bencode.py - the one bencode decoder of the project's Python helpers (the
demo's swarm step and the e2e tests' announce checks), stdlib only.
BEP 3: integers i..e, byte strings N:..., lists l..e, dictionaries d..e."""


def bdecode(data, i=0):
    """Decode one bencoded value at data[i:]; return (value, next index)."""
    c = data[i : i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1 : end]), end + 1
    if c == b"l":
        out, i = [], i + 1
        while data[i : i + 1] != b"e":
            v, i = bdecode(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        out, i = {}, i + 1
        while data[i : i + 1] != b"e":
            k, i = bdecode(data, i)
            v, i = bdecode(data, i)
            out[k] = v
        return out, i + 1
    if c.isdigit():
        colon = data.index(b":", i)
        n = int(data[i:colon])
        return data[colon + 1 : colon + 1 + n], colon + 1 + n
    raise ValueError("not bencode at offset %d" % i)
