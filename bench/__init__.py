"""Clipper's benchmarks: not tests. They print tables of ratios against raw FFmpeg measured in
the same run and never fail on a timing. Run `python -m bench --help`."""
