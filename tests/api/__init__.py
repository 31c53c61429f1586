"""The HTTP edge in-process or as `clipper api`: routes, problems, ops, inline submits."""
