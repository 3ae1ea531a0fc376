"""Use cases of the registry; entry points (CLI, web, flows) call only these."""
