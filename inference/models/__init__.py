"""Hand-written forward passes over the paged KV cache, one module per model family."""
