"""The Docker Engine API (v1.41 subset) served by longboatd: HTTP over a unix socket or
TCP (with TLS), routing, Docker's headers, errors and streams."""
