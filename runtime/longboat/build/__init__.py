"""The builder: Dockerfiles into images, with the classic builder's semantics
(docs/build.md)."""
