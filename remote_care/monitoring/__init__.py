"""Monitoring: alert lifecycle, the board and the vitals pages."""
