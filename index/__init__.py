"""snapfind: index."""
