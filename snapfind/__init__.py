"""The `snapfind` command: the composition root that wires retrieval, index and bot."""
