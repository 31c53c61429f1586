"""Download filenames: RFC 6266 Content-Disposition that no requested name can break."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from clipper.storage.links import ascii_filename, content_disposition, safe_filename

# The grammar a client parses: token; filename="qdtext"; filename*=UTF-8''attr-chars.
RFC6266 = re.compile(
    r"attachment; filename=\"[A-Za-z0-9._()+ -]+\"; filename\*=UTF-8''"
    r"[A-Za-z0-9!#$&+.^_`|~%-]+"
)


@pytest.mark.parametrize(
    "name",
    [
        "clip.mp4",
        "Müller \u2013 Interview.mov",
        "日本語.mp4",
        'a"b.mp4',
        "a\r\nContent-Type: text/html\r\n\r\n<script>.mp4",
        "../../etc/passwd",
        "..\\..\\win.ini",
        "\x00\x01\x7f",
        "",
        "   ",
        "...",
        "a;b=c, d.mp4",
        "%22quoted%22.mp4",
        "\u202egnp.exe",
    ],
)
def test_content_disposition_is_well_formed(name: str) -> None:
    header = content_disposition(name)
    assert RFC6266.fullmatch(header), header
    star = unquote(header.split("filename*=UTF-8''", 1)[1])
    assert not set(star) & set('/\\"\r\n\x00\u202e')
    assert not star.startswith(".")


def test_unicode_name_survives_in_filename_star() -> None:
    header = content_disposition("Müller \u2013 日本.mp4")
    assert unquote(header.split("filename*=UTF-8''", 1)[1]) == "Müller \u2013 日本.mp4"
    assert ascii_filename("Müller \u2013 日本.mp4") == "Muller _ _.mp4"


def test_empty_names_get_a_default() -> None:
    assert safe_filename("") == "download"
    assert safe_filename("...") == "download"
    assert ascii_filename("日本") == "download"


def test_long_names_keep_their_extension() -> None:
    name = safe_filename("x" * 500 + ".mp4")
    assert len(name) == 200
    assert name.endswith(".mp4")


def test_path_separators_are_neutralized() -> None:
    assert safe_filename("../../etc/passwd") == "_.._etc_passwd"
    assert safe_filename("a\\b") == "a_b"
