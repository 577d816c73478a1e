"""Disease-progression analyses (research)."""
