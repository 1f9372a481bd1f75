"""Where a vector store is: `milvus://HOST:PORT?collection=NAME` or `milvus:///FILE.db`.

One parser for the build's `--store` and the serving side's `SNAPFIND_STORE`; it imports no
client library, so naming a store costs nothing until one is opened.
"""

from urllib.parse import parse_qs, urlparse

from retrieval.errors import ConfigError

DEFAULT_COLLECTION = "snapfind"


def milvus_target(store: str) -> tuple[str, str]:
    """(pymilvus uri, collection) of `milvus://HOST:PORT?collection=NAME` or, for Milvus Lite,
    `milvus:///PATH/FILE.db?collection=NAME`."""
    parsed = urlparse(store)
    if parsed.scheme != "milvus":
        raise ConfigError(f"unknown store {store!r}: use milvus://HOST:PORT or milvus:///FILE.db")
    collection = parse_qs(parsed.query).get("collection", [DEFAULT_COLLECTION])[0]
    if parsed.netloc:
        return f"http://{parsed.netloc}", collection
    if not parsed.path.endswith(".db"):
        raise ConfigError(f"a Milvus Lite store is a .db file: milvus:///PATH.db, not {store!r}")
    return parsed.path, collection
