"""The FFmpeg engine on generated media: accuracy, planning, probing, the runner, the CLI cut."""
