"""longboatd, the engine: owns the host's images (and, to come, containers, networks and
volumes) under its data root, and serves them through the Docker API."""
