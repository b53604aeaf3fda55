"""Checks over what ``vmsec probe`` saw on the network (endpoint scope), tied to configuration."""
