"""snapfind: bot."""
