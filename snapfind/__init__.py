"""snapfind: snapfind."""
