"""The command line: thin — parse arguments, call the library, map errors to exit codes."""
