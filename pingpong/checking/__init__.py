"""Checking a run: its logs read back, the rules applied to them, totals and statistics."""
