"""Migration scripts, oldest first. Never edit a released one: add a new revision."""
