"""longboat-runtime: the OCI runtime (see docs/runtime.md)."""

#: The OCI runtime spec version we implement, write (``spec``) and report (``state``).
OCI_VERSION = "1.1.0"
