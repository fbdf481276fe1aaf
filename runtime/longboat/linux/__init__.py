"""Thin, typed wrappers over Linux kernel interfaces. No policy lives here."""
