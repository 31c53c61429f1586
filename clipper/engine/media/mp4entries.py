"""Sample descriptions of an MP4/MOV track (`stsd`): the first entry, audio and timecode.

Part of the in-process probe (clipper/engine/media/mp4probe.py): codec, sample rate and
channels of an audio track as ffprobe reports them (AAC from its AudioSpecificConfig, PCM from
the entry; anything else declines), and the start timecode of a `tmcd` track as FFmpeg's mov
demuxer labels it.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

from clipper.engine.media.model import AudioInfo
from clipper.engine.media.mp4index import Data, Unsupported, boxes, children, need
from clipper.timecode import frames_to_timecode, supports_drop_frame, timecode_to_frames

__all__ = ["audio_info", "sample_entry", "start_timecode", "timecode_tag"]

_PCM_CODECS = {(b"sowt", 16): "pcm_s16le", (b"twos", 16): "pcm_s16be", (b"twos", 8): "pcm_s8"}
#: MPEG-4 objectTypeIndication (esds) → codec. Only AAC and PCM: for MP3, AC-3 and the rest
#: ffprobe reads the channel count from the bitstream, not from the sample description.
_MP4A_OBJECTS = {0x40: "aac", 0x66: "aac", 0x67: "aac", 0x68: "aac"}
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000,
              7350)  # fmt: skip
#: AudioSpecificConfig channelConfiguration → channels (0: described elsewhere).
_AAC_CHANNELS = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 8}


def sample_entry(data: Data, stbl: dict[bytes, tuple[int, int]]) -> tuple[bytes, int, int]:
    """(type, start, end) of the first sample description, its 8-byte header included."""
    a, b = need(stbl, b"stsd")
    if struct.unpack_from(">I", data, a + 4)[0] != 1:
        # Several descriptions: the stream changes its settings mid-way (spliced files).
        raise Unsupported("not exactly one sample description")
    size, kind = struct.unpack_from(">I4s", data, a + 8)
    if size < 16 or a + 8 + size > b:
        raise Unsupported("bad sample description")
    return kind, a + 8, a + 8 + size


def audio_info(
    data: Data,
    index: int,
    mdia: dict[bytes, tuple[int, int]],
    entry: tuple[bytes, int, int],
    scale: int,
) -> AudioInfo:
    kind, start, end = entry
    version, channels, bits = struct.unpack_from(">H6xHH", data, start + 16)
    if version > 1:
        raise Unsupported("QuickTime sound description v2")
    rate = struct.unpack_from(">I", data, start + 32)[0] >> 16
    if kind == b"mp4a":
        codec, rate, channels = _mp4a(
            data, start + (52 if version == 1 else 36), end, rate, channels
        )
    elif (kind, bits) in _PCM_CODECS:
        codec = _PCM_CODECS[(kind, bits)]
    else:
        raise Unsupported(f"audio codec {kind!r}")
    return AudioInfo(
        index=index,
        codec=codec,
        profile=None,
        sample_rate=rate or scale,
        channels=channels,
        channel_layout=None,
        bit_rate=None,
    )


def _mp4a(data: Data, start: int, end: int, rate: int, channels: int) -> tuple[str, int, int]:
    """(codec, sample rate, channels) from an mp4a entry's esds (AudioSpecificConfig)."""
    boxes_in_entry = children(data, start, end)
    esds = boxes_in_entry.get(b"esds")
    if esds is None and b"wave" in boxes_in_entry:
        # QuickTime (MOV) keeps the esds inside a `wave` box of the sound description.
        esds = children(data, *boxes_in_entry[b"wave"]).get(b"esds")
    if esds is None:
        raise Unsupported("mp4a without esds")
    pos, stop = esds[0] + 4, esds[1]
    tag, pos, _ = _descriptor(data, pos)
    if tag != 0x03:
        raise Unsupported("esds without ES descriptor")
    flags = data[pos + 2]
    pos += 3 + (2 if flags & 0x80 else 0)
    if flags & 0x40:  # URL
        pos += 1 + data[pos]
    pos += 2 if flags & 0x20 else 0
    tag, pos, _ = _descriptor(data, pos)
    if tag != 0x04 or data[pos] not in _MP4A_OBJECTS:
        raise Unsupported("unknown MPEG-4 audio object")
    codec = _MP4A_OBJECTS[data[pos]]
    pos += 13
    if pos >= stop:
        raise Unsupported("AAC without AudioSpecificConfig")
    tag, pos, size = _descriptor(data, pos)
    if tag != 0x05 or size < 2:
        raise Unsupported("AAC without AudioSpecificConfig")
    bits = int.from_bytes(data[pos : pos + 5].ljust(5, b"\0"), "big")
    object_type, rate_index = bits >> 35, (bits >> 31) & 0xF
    if object_type in (5, 29, 31) or rate_index >= len(_AAC_RATES):
        raise Unsupported("HE-AAC or an explicit AAC sample rate")  # ffprobe decodes those
    config = (bits >> 27) & 0xF
    return codec, _AAC_RATES[rate_index], _AAC_CHANNELS.get(config, channels)


def _descriptor(data: Data, pos: int) -> tuple[int, int, int]:
    """(tag, payload start, payload size) of an MPEG-4 descriptor at `pos`."""
    tag, size = data[pos], 0
    pos += 1
    for _ in range(4):
        byte = data[pos]
        pos += 1
        size = (size << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return tag, pos, size


def start_timecode(
    path: Path, data: Data, stbl: dict[bytes, tuple[int, int]], entry: tuple[bytes, int, int]
) -> str | None:
    """The start timecode label, as FFmpeg's mov demuxer makes it from a tmcd track."""
    kind, start, _ = entry
    if kind != b"tmcd":
        raise Unsupported("tmcd track without a tmcd description")
    flags, scale, duration = struct.unpack_from(">III", data, start + 20)
    if not scale or not duration:
        return None
    if b"stco" in stbl:
        (offset,) = struct.unpack_from(">I", data, stbl[b"stco"][0] + 8)
    else:
        (offset,) = struct.unpack_from(">Q", data, need(stbl, b"co64")[0] + 8)
    with path.open("rb") as f:
        f.seek(offset)
        raw = f.read(4)
    if len(raw) != 4:
        raise Unsupported("tmcd sample outside the file")
    (frames,) = struct.unpack(">I", raw)
    rate = Fraction(scale, duration)
    drop = bool(flags & 0x0001)
    fps = round(rate)
    if fps <= 0 or (drop and not supports_drop_frame(rate)):
        raise Unsupported("a timecode FFmpeg formats its own way")
    label = frames_to_timecode(frames, rate, drop_frame=drop)
    if timecode_to_frames(label, rate) != frames:
        raise Unsupported("a timecode past 24 hours")  # FFmpeg wraps only when flagged
    return label


def timecode_tag(data: Data, start: int, end: int) -> bool:
    """True when metadata (outside the sample tables) names a timecode: FFmpeg may take the
    start timecode from such a tag, which this reader does not model."""
    for kind, a, b in boxes(data, start, end):
        if kind == b"trak":
            if timecode_tag(data, a, b):
                return True
        elif kind != b"mdia" and b"timecode" in data[a:b]:
            return True
    return False
