"""Planning a cut: requested times to frame ranges, cut points, copied and re-encoded parts."""
