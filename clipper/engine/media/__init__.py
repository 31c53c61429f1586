"""Reading a source: the typed probe model, the ffprobe reader and the in-process MP4/MOV reader."""
