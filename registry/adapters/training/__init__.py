"""Training backends (torch, imported lazily by the training service)."""
