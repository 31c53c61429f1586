"""The shared core: settings, logs, storage backends, layering and the deployment files."""
