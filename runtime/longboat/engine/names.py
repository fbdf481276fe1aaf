"""Container names: Docker's rules, and generated names in Docker's adjective_surname
style (words of our own: boats and sailors)."""

from __future__ import annotations

import random
import re

from longboat.errors import InvalidArgument

_VALID = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

ADJECTIVES = (
    "agile", "amber", "ancient", "bold", "brave", "breezy", "bright", "calm", "clever",
    "coastal", "crisp", "daring", "deep", "eager", "fair", "fearless", "gentle", "golden",
    "hardy", "hidden", "keen", "lively", "loyal", "lucky", "merry", "misty", "nimble",
    "noble", "quiet", "rapid", "restless", "salty", "serene", "silver", "steady", "stout",
    "swift", "tidal", "trusty", "vivid", "wandering", "windy",
)
NOUNS = (
    "albatross", "anchor", "barnacle", "bosun", "compass", "coracle", "corsair", "cutter",
    "dinghy", "dory", "drakkar", "frigate", "galleon", "gull", "harbour", "helm", "junk",
    "keel", "ketch", "knarr", "lantern", "lighthouse", "mariner", "mast", "navigator",
    "oar", "pilot", "quay", "rudder", "sail", "schooner", "skiff", "sloop", "starboard",
    "tern", "tide", "voyager", "wake", "yawl",
)


def check(name: str) -> str:
    """A valid container name without its leading slash, or InvalidArgument."""
    if not _VALID.match(name):
        raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                              "are allowed")
    return name.lstrip("/")


def generate(taken: set[str]) -> str:
    for attempt in range(100):
        name = f"{random.choice(ADJECTIVES)}_{random.choice(NOUNS)}"
        if attempt > 10:
            name += str(random.randint(0, 99))
        if name not in taken:
            return name
    raise InvalidArgument("could not generate a free container name")
