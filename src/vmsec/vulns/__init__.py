"""Vulnerability intelligence: version ordering, advisory feeds, the local database and the matcher."""
