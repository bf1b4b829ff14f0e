#!/usr/bin/env python3
"""Checks Bitchat announces captured by bitchat-client.py, independently of
yonder's code: reads `NOTIFY <hex>` lines, parses each frame by the Bitchat
wire layout, and verifies the Ed25519 signature of every announce against
the signing key the announce itself carries (TLV 0x03), over Bitchat's
signing preimage (the packet with TTL 0, no signature, RSR clear, padded).

Exit 0 if at least one announce verified and none failed.
Usage: verify-announce.py CLIENT_OUTPUT
"""
import sys
import zlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ANNOUNCE = 0x01
F_RECIPIENT, F_SIGNATURE, F_COMPRESSED, F_ROUTE, F_RSR = 0x01, 0x02, 0x04, 0x08, 0x10


def pad(frame: bytes) -> bytes:
    """Bitchat's MessagePadding: PKCS#7 up to 256/512/1024/2048, if the pad fits in a byte."""
    for block in (256, 512, 1024, 2048):
        if len(frame) + 16 <= block:
            n = block - len(frame)
            return frame + bytes([n]) * n if n <= 255 else frame
    return frame


def parse(frame: bytes):
    version, mtype, _ttl = frame[0], frame[1], frame[2]
    if version not in (1, 2):
        raise ValueError(f"version {version}")
    flags = frame[11]
    lsize = 2 if version == 1 else 4
    plen = int.from_bytes(frame[12:12 + lsize], "big")
    off = 12 + lsize
    sender = frame[off:off + 8]
    off += 8
    recipient = b""
    if flags & F_RECIPIENT:
        recipient = frame[off:off + 8]
        off += 8
    route = b""
    if version >= 2 and flags & F_ROUTE:
        n = frame[off]
        route = frame[off:off + 1 + 8 * n]
        off += 1 + 8 * n
    body = frame[off:off + plen]
    if len(body) != plen:
        raise ValueError("truncated payload")
    off += plen
    sig = None
    if flags & F_SIGNATURE:
        sig = frame[off:off + 64]
        if len(sig) != 64:
            raise ValueError("truncated signature")
    payload = body
    if flags & F_COMPRESSED:
        payload = zlib.decompress(body[lsize:], -15)
    # The preimage: same fields, TTL 0, signature and RSR flags clear.
    head = bytes([version, mtype, 0]) + frame[3:11] + bytes([flags & ~(F_SIGNATURE | F_RSR) & 0xFF])
    preimage = pad(head + frame[12:12 + lsize] + sender + recipient + route + body)
    return mtype, sender, payload, sig, preimage


def tlvs(payload: bytes) -> dict:
    out, i = {}, 0
    while i + 2 <= len(payload):
        t, n = payload[i], payload[i + 1]
        out.setdefault(t, payload[i + 2:i + 2 + n])
        i += 2 + n
    return out


def main() -> int:
    good = bad = 0
    for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
        if not line.startswith("NOTIFY "):
            continue
        try:
            frame = bytes.fromhex(line.split()[1])
            mtype, sender, payload, sig, preimage = parse(frame)
        except (ValueError, IndexError, zlib.error) as e:
            print(f"SKIP unparsable frame ({e})")
            continue
        if mtype != ANNOUNCE:
            continue
        fields = tlvs(payload)
        nick = fields.get(0x01, b"").decode("utf-8", "replace")
        key = fields.get(0x03)
        if sig is None or key is None or len(key) != 32 or len(fields.get(0x02, b"")) != 32:
            print(f"ANNOUNCE invalid from {sender.hex()}: unsigned or missing keys")
            bad += 1
            continue
        try:
            Ed25519PublicKey.from_public_bytes(key).verify(sig, preimage)
        except InvalidSignature:
            print(f"ANNOUNCE invalid from {sender.hex()}: signature does not verify")
            bad += 1
            continue
        print(f"ANNOUNCE valid from {sender.hex()} nick={nick!r} signing_key={key.hex()}")
        good += 1
    print(f"announces: {good} valid, {bad} invalid")
    return 0 if good > 0 and bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
