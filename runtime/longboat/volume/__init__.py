"""Volumes: the store of named and anonymous volumes under ``DATA_ROOT/volumes`` (the
``local`` driver, with its ``type``/``device``/``o`` mount options), the copy of an
image's content into a new volume, and a container's mount points (Docker's Binds,
Mounts, VolumesFrom and the image's VOLUMEs). See ``docs/volumes.md``."""
