"""Where a vector store is: `milvus://HOST:PORT?collection=NAME` or `milvus:///FILE.db`.

One parser for the build's `--store` and the serving side's `SNAPFIND_STORE`; it imports no
client library, so naming a store costs nothing until one is opened. Anything it does not
understand is refused rather than dropped: a mistyped `?colection=shop` once served (and a
build filled) the default collection instead of the shop's.
"""

import re
from urllib.parse import parse_qs, urlparse

from retrieval.errors import ConfigError

DEFAULT_COLLECTION = "snapfind"
# Milvus's own rule for a collection name; checked here so a bad one is one line, not an RPC error
COLLECTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")


def milvus_target(store: str) -> tuple[str, str]:
    """(pymilvus uri, collection) of `milvus://HOST:PORT?collection=NAME` or, for Milvus Lite,
    `milvus:///PATH/FILE.db?collection=NAME`; ConfigError for anything else."""
    parsed = urlparse(store)
    if parsed.scheme != "milvus":
        raise ConfigError(f"unknown store {store!r}: use milvus://HOST:PORT or milvus:///FILE.db")
    options = parse_qs(parsed.query, keep_blank_values=True)
    if set(options) - {"collection"} or parsed.fragment or parsed.params:
        raise ConfigError(f"store {store!r}: the only option is ?collection=NAME")
    names = options.get("collection", [DEFAULT_COLLECTION])
    if len(names) != 1 or not COLLECTION_NAME.fullmatch(names[0]):
        raise ConfigError(
            f"store {store!r}: name one collection of letters, digits and _ (not starting "
            f"with a digit, at most 255), as Milvus requires"
        )
    if parsed.netloc:
        try:
            malformed = not parsed.hostname or parsed.path not in ("", "/") or parsed.port == 0
        except ValueError:  # a port that is not a number up to 65535
            malformed = True
        if malformed:
            raise ConfigError(f"a Milvus server store is milvus://HOST:PORT, not {store!r}")
        return f"http://{parsed.netloc}", names[0]
    if not parsed.path.endswith(".db"):
        raise ConfigError(f"a Milvus Lite store is a .db file: milvus:///PATH.db, not {store!r}")
    return parsed.path, names[0]
