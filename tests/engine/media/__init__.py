"""The media stage: ffprobe, the in-process MP4/MOV readers, variable-frame-rate refusal."""
