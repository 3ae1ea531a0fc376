"""Local model folders (checks, pickle refusal, device resolution, content hashes): one module
used by the encoder scorer, the generation backends and the trainers."""
