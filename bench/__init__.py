"""`make bench`: the split design measured side by side on this machine (see README)."""
