"""Meta-evaluation metrics (pure, vectorized numpy/scipy). See DESIGN.md §5 for the sources."""
