"""The backbone comparison study behind `snapfind evaluate` (reads the core, writes a report)."""
