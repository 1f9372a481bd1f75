"""What a weights setting means, parsed in one place for settings, the extractor and the study."""

from pathlib import Path

from retrieval.errors import ConfigError

NAMED = ("imagenet", "none")  # the backbone's ImageNet weights; seeded random weights


def parse_weights(text: str) -> str:
    """`imagenet`, `none` (any case) or an existing weights file as an absolute path.

    Raises `ConfigError` naming the missing file otherwise.
    """
    choice = text.strip()
    if choice.lower() in NAMED:
        return choice.lower()
    path = Path(choice).expanduser()
    if not path.is_file():
        raise ConfigError(f"weights file not found: {path} (use imagenet, none or a file)")
    return str(path.resolve())
