"""The model on its device: where weights come from, how they load and quantize, and the
runner that computes a step's logits over the paged KV cache.

``runner`` is the only module that runs a forward pass; ``llama`` holds the fused blocks of
the Llama family. Must not import the engine's scheduler or the web API.
"""
