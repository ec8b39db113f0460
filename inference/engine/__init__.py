"""The continuous-batching engine: requests in, tokens out.

``engine.Engine.step()`` reads as a sentence (schedule, execute, sample, post-process);
``async_engine`` runs it on one thread behind asyncio. The scheduler, the block manager, the
batch vocabulary, stopping and detokenizing never import torch, so they are tested without a
model. The only device code is ``inference.model.runner``.
"""
