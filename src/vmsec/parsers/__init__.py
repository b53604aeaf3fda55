"""Parsers: pure text -> facts, shared by every transport."""
