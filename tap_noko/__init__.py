"""tap-noko: a Singer tap for Noko (formerly Freckle)."""
