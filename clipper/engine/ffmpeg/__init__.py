"""Running FFmpeg: inputs and the process runner, argv builders, encoders, staging, rewrites."""
