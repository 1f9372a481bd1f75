"""snapfind: retrieval."""
