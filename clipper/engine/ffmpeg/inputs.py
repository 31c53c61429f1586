"""FFmpeg inputs and outputs as Clipper builds them: safe URLs, whitelists, the argv's frame.

No user string reaches FFmpeg as an option or a URL Clipper did not build: local paths become
`file:` URLs (never parsed as options), remote sources are only Clipper's own signed links,
and every input names the protocols and demuxers it may use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ffmpeg as ffmpeg_python

from clipper.errors import UnsafeInput

#: Demuxers an input may use: blocks HLS, concat lists, AVI and image tricks in sources.
SOURCE_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mxf,mpegts"
#: Protocols for local inputs, and for the signed storage URLs Clipper builds itself.
FILE_PROTOCOLS = "file"
HTTP_PROTOCOLS = "http,https,tcp,tls,crypto"
#: Seconds FFmpeg waits on a stalled network read before failing (default: forever).
NETWORK_RW_TIMEOUT_SECONDS = 30

def media_url(source: str | Path) -> str:
    """The input string FFmpeg gets: `file:/abs/path` for local files, http(s) URLs as is."""
    text = str(source)
    if text.startswith(("http://", "https://")):
        return text
    if "://" in text or text.startswith(("file:", "pipe:", "concat:", "data:")):
        raise UnsafeInput("only local paths and Clipper's own http(s) links are accepted")
    # `file:` makes a name starting with '-' (or containing ':') a plain path, never an option.
    return "file:" + str(Path(text).resolve())


def is_remote(source: str | Path) -> bool:
    """True for http(s) sources."""
    return str(source).startswith(("http://", "https://"))


def input_options(source: str | Path, *, formats: str | None = SOURCE_FORMATS) -> dict[str, Any]:
    """Safety options for one input: protocol/format whitelists and network resilience."""
    opts: dict[str, Any] = {}
    if is_remote(source):
        opts.update(
            protocol_whitelist=HTTP_PROTOCOLS,
            reconnect=1,
            reconnect_on_network_error=1,
            rw_timeout=NETWORK_RW_TIMEOUT_SECONDS * 1_000_000,
            max_redirects=0,
        )
    else:
        opts["protocol_whitelist"] = FILE_PROTOCOLS
    if formats:
        opts["format_whitelist"] = formats
    return opts


def source_input(
    source: str | Path, *, formats: str | None = SOURCE_FORMATS, **options: Any
) -> Any:
    """An ffmpeg-python input node for `source` with the safety options and `options`."""
    return ffmpeg_python.input(
        media_url(source), **input_options(source, formats=formats), **options
    )


def compile_argv(
    node: Any,
    *,
    ffmpeg_path: str = "ffmpeg",
    progress: bool = True,
    output_args: Sequence[str] = (),
) -> list[str]:
    """The argv for an output node: quiet, no stdin, overwrite, progress on stdout.

    `output_args` go just before the output URL: options ffmpeg-python cannot express
    because they repeat a key (`-metadata:s:a:0 language=… -metadata:s:a:0 title=…`).
    """
    global_args = ["-nostdin", "-hide_banner", "-loglevel", "error"]
    if progress:
        global_args += ["-nostats", "-progress", "pipe:1"]
    argv: list[str] = node.global_args(*global_args).overwrite_output().compile(cmd=ffmpeg_path)
    if output_args:
        at = max(i for i, arg in enumerate(argv) if arg.startswith("file:"))
        argv[at:at] = list(output_args)
    return argv


def output_url(path: Path) -> str:
    """The output string FFmpeg gets for a local path (never parsed as an option)."""
    return "file:" + str(path.resolve())
