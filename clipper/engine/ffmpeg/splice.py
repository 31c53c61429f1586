"""Turn the first HEVC CRA picture of an MPEG-TS part into a BLA picture, in place.

An open-GOP HEVC part copied from the middle of a source starts with a CRA keyframe. Joined
after another part, a decoder takes that CRA as a continuation of the same coded video
sequence: picture order counts collide with the previous part ("Duplicate POC") and
frames come out in the wrong order. A BLA (broken link) picture has the same slice syntax
and starts a new sequence, which is what a splice is; changing the NAL unit type in the
two-byte NAL header is all it takes (HEVC spec 7.4.2.2, 8.1.3).
"""

from __future__ import annotations

from pathlib import Path

TS_PACKET_BYTES = 188
_SYNC = 0x47
_CRA_NUT = 21
_BLA_W_LP_NUT = 16
_AUD_NUT = 35


def _video_payload(data: bytes) -> tuple[bytearray, list[int]]:
    """Payload bytes of the first PES stream found, with each byte's offset in the file."""
    payload = bytearray()
    offsets: list[int] = []
    video_pid = None
    for pos in range(0, len(data) - TS_PACKET_BYTES + 1, TS_PACKET_BYTES):
        packet = data[pos : pos + TS_PACKET_BYTES]
        if packet[0] != _SYNC:
            break
        pid = ((packet[1] & 0x1F) << 8) | packet[2]
        start = bool(packet[1] & 0x40)
        adaptation = (packet[3] >> 4) & 0x3
        body = 4
        if adaptation in (2, 3):
            body += 1 + packet[4]
        if adaptation == 2 or body >= TS_PACKET_BYTES:
            continue
        if video_pid is None:
            # The first PES packet (PSI tables start with a pointer field, PES with 00 00 01).
            if start and packet[body : body + 3] == b"\x00\x00\x01" and packet[body + 3] >= 0xE0:
                video_pid = pid
            else:
                continue
        if pid != video_pid:
            continue
        if start and packet[body : body + 3] == b"\x00\x00\x01":
            header_length = packet[body + 8]
            body += 9 + header_length
            if len(payload) > 65536:
                break  # the first access unit is long done
        payload.extend(packet[body:])
        offsets.extend(range(pos + body, pos + TS_PACKET_BYTES))
    return payload, offsets


def cra_to_bla(path: Path) -> int:
    """Rewrite the first access unit's CRA slice NAL units as BLA_W_LP; how many changed."""
    data = bytearray(path.read_bytes()[: 512 * TS_PACKET_BYTES])
    payload, offsets = _video_payload(bytes(data))
    changed = 0
    seen_slice = False
    i = payload.find(b"\x00\x00\x01")
    while i >= 0 and i + 4 < len(payload):
        header = i + 3
        nut = (payload[header] >> 1) & 0x3F
        if nut == _CRA_NUT:
            offset = offsets[header]
            data[offset] = (data[offset] & 0x81) | (_BLA_W_LP_NUT << 1)
            changed += 1
            seen_slice = True
        elif seen_slice and (nut < 32 or nut == _AUD_NUT):
            break  # the next picture or access unit
        i = payload.find(b"\x00\x00\x01", header)
    if changed:
        with path.open("r+b") as f:
            f.write(data)  # the same leading bytes, with the NAL headers changed
    return changed
