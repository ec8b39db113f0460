"""The shared KV cache's bookkeeping: paged blocks, with prefix reuse.

``BlockManager`` is plain Python so the scheduler and its tests never touch torch: it hands
out fixed-size blocks, keeps each sequence's block table, and remembers the hash of every
fully computed block so a later request whose prompt starts with the same tokens (a chat
follow-up resends the whole history) reuses those blocks instead of recomputing them.
Within the first block that no cached block matches whole, the longest run of tokens that
any known block under the same prefix holds is reused too (SGLang-style token-granular
reuse at block cost): its KV is copied into the new sequence's fresh block before the next
step (``take_copies``). Known blocks are the hashed full ones and the partly filled last
block a finished sequence leaves. So a resent prompt (a regenerated answer: its prompt's
last block was since filled with the old answer) and a follow-up (the history ends inside
the previous answer's last block) compute only their new tokens, not up to a block more.
Freed blocks stay reusable until they are evicted, least recently freed first.

The tensors themselves are ``inference.model.kv_tensors.KVCache``, beside the runner that
fills them. Must not import torch, the scheduler, the engine or Django.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

DEFAULT_BLOCK_SIZE = 32  # 16 makes the per-layer KV gather ~1.4x slower on CPU


class CacheUser(Protocol):
    """What the block manager needs from a sequence."""

    token_ids: list[int]
    block_table: list[int]
    block_hashes: list[int]
    num_computed_tokens: int


@dataclass
class Block:
    block_id: int
    ref_count: int = 0
    hash: int | None = None  # set once the block's KV is computed and hashed
    # Known content (a hashed full block, or a freed sequence's partly filled last block):
    # the hash of the block before it and the tokens whose KV it holds.
    content: tuple[int | None, tuple[int, ...]] | None = None


@dataclass
class BlockManager:
    """Allocates cache blocks to sequences; reuses computed blocks across shared prefixes."""

    num_blocks: int
    block_size: int = DEFAULT_BLOCK_SIZE
    enable_prefix_caching: bool = True
    blocks: list[Block] = field(init=False)
    _free: OrderedDict[int, None] = field(init=False)
    _by_hash: dict[int, int] = field(init=False)
    _children: dict[int | None, set[int]] = field(init=False)  # parent hash -> known blocks
    _copies: list[tuple[int, int]] = field(init=False)  # (source, destination) still to copy

    def __post_init__(self) -> None:
        if self.num_blocks < 1 or self.block_size < 1:
            raise ValueError("num_blocks and block_size must be >= 1")
        self.blocks = [Block(i) for i in range(self.num_blocks)]
        self._free = OrderedDict((i, None) for i in range(self.num_blocks))
        self._by_hash = {}
        self._children = {}
        self._copies = []

    # -- queries -------------------------------------------------------------------------
    @property
    def num_free_blocks(self) -> int:
        return len(self._free)

    @property
    def num_used_blocks(self) -> int:
        return self.num_blocks - len(self._free)

    @property
    def num_cached_blocks(self) -> int:
        """Blocks whose KV is reusable by hash (used or free but not yet evicted)."""
        return len(self._by_hash)

    def blocks_for(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def full_block_hashes(self, token_ids: list[int], start: int = 0, prev: int | None = None):
        """Chained hashes of the full blocks of ``token_ids`` from block index ``start``."""
        hashes = []
        bs = self.block_size
        for i in range(start, len(token_ids) // bs):
            prev = hash((prev, tuple(token_ids[i * bs : (i + 1) * bs])))
            hashes.append(prev)
        return hashes

    def _match(self, token_ids: list[int], use_prefix_cache: bool = True) -> list[int]:
        """Block ids holding the longest cached prefix of ``token_ids``."""
        if not (self.enable_prefix_caching and use_prefix_cache):
            return []
        matched = []
        for h in self.full_block_hashes(token_ids):
            block_id = self._by_hash.get(h)
            if block_id is None:
                break
            matched.append(block_id)
        return matched

    def _match_partial(self, token_ids: list[int], matched: list[int]) -> tuple[int, int]:
        """The known block after ``matched`` holding the longest run of ``token_ids``' next
        tokens, and that run's length ((-1, 0) where none holds even one)."""
        parent = self.blocks[matched[-1]].hash if matched else None
        rest = token_ids[len(matched) * self.block_size :]
        best, best_len = -1, 0
        for block_id in self._children.get(parent, ()):
            held = self.blocks[block_id].content[1]  # type: ignore[index]
            n = 0
            for a, b in zip(held, rest, strict=False):
                if a != b:
                    break
                n += 1
            if n > best_len:
                best, best_len = block_id, n
        return best, best_len

    def _remember(self, block: Block, parent: int | None, tokens: tuple[int, ...]) -> None:
        block.content = (parent, tokens)
        self._children.setdefault(parent, set()).add(block.block_id)

    def _forget(self, block: Block) -> None:
        if block.content is not None:
            siblings = self._children[block.content[0]]
            siblings.discard(block.block_id)
            if not siblings:
                del self._children[block.content[0]]
            block.content = None

    def take_copies(self) -> list[tuple[int, int]]:
        """Block copies (source, destination) the cache must make before the next step."""
        copies, self._copies = self._copies, []
        return copies

    def num_blocks_to_allocate(self, seq: CacheUser, use_prefix_cache: bool = True) -> int:
        """Free-list blocks that ``allocate(seq)`` would consume."""
        matched = self._match(seq.token_ids, use_prefix_cache)
        revived = sum(1 for b in matched if self.blocks[b].ref_count == 0)
        return self.blocks_for(len(seq.token_ids)) - len(matched) + revived

    def can_allocate(self, seq: CacheUser, reserve: int = 0, use_prefix_cache: bool = True) -> bool:
        return self.num_blocks_to_allocate(seq, use_prefix_cache) + reserve <= len(self._free)

    # -- changes -------------------------------------------------------------------------
    def _take_free(self, block_id: int | None = None) -> Block:
        if block_id is None:
            block_id, _ = self._free.popitem(last=False)
        else:
            del self._free[block_id]
        block = self.blocks[block_id]
        if block.ref_count == 0 and block.hash is not None and block_id is not None:
            # A fresh allocation evicts the block's cached content.
            if self._by_hash.get(block.hash) == block.block_id:
                del self._by_hash[block.hash]
            block.hash = None
        if block.ref_count == 0:  # evicted: a later step overwrites its tokens
            self._forget(block)
        return block

    def allocate(self, seq: CacheUser, use_prefix_cache: bool = True) -> int:
        """Give ``seq`` blocks for all its tokens; returns how many tokens are already cached.

        At least the last token is always left to compute, since its logits are needed.
        """
        if seq.block_table:
            raise ValueError("sequence already holds blocks")
        matched = self._match(seq.token_ids, use_prefix_cache)
        if self.num_blocks_to_allocate(seq, use_prefix_cache) > len(self._free):
            raise MemoryError("not enough free KV cache blocks")
        for block_id in matched:
            block = self.blocks[block_id]
            if block.ref_count == 0:
                del self._free[block_id]
            block.ref_count += 1
            seq.block_table.append(block_id)
        seq.block_hashes = [self.blocks[b].hash for b in matched]  # type: ignore[misc]
        source, num_partial = (-1, 0)
        if self.enable_prefix_caching and use_prefix_cache:
            source, num_partial = self._match_partial(seq.token_ids, matched)
        for i in range(self.blocks_for(len(seq.token_ids)) - len(matched)):
            block = self._take_free()
            block.ref_count = 1
            seq.block_table.append(block.block_id)
            if i == 0 and num_partial and block.block_id != source:
                # Copied at the start of the next step, before any step writes a block.
                self._copies.append((source, block.block_id))
        num_cached = len(matched) * self.block_size + num_partial
        return min(num_cached, len(seq.token_ids) - 1)

    def can_grow(self, seq: CacheUser, num_tokens: int) -> bool:
        return self.blocks_for(num_tokens) - len(seq.block_table) <= len(self._free)

    def grow(self, seq: CacheUser, num_tokens: int) -> None:
        """Make ``seq``'s block table cover ``num_tokens`` tokens."""
        missing = self.blocks_for(num_tokens) - len(seq.block_table)
        if missing > len(self._free):
            raise MemoryError("not enough free KV cache blocks")
        for _ in range(missing):
            block = self._take_free()
            block.ref_count = 1
            seq.block_table.append(block.block_id)

    def shrink(self, seq: CacheUser, num_tokens: int) -> None:
        """Give back the blocks past those ``num_tokens`` tokens need (drafts that were
        rejected); they hold no computed token, so no hash or content."""
        keep = self.blocks_for(num_tokens)
        while len(seq.block_table) > keep:
            block = self.blocks[seq.block_table.pop()]
            if block.hash is not None or block.ref_count != 1:
                raise ValueError("shrink would drop a computed or shared block")
            block.ref_count = 0
            self._free[block.block_id] = None
            self._free.move_to_end(block.block_id, last=False)  # no content: reuse first

    def commit(self, seq: CacheUser) -> None:
        """Register the hashes of ``seq``'s blocks that are now fully computed."""
        if not self.enable_prefix_caching:
            return
        num_full = min(seq.num_computed_tokens // self.block_size, len(seq.block_table))
        start = len(seq.block_hashes)
        if num_full <= start:
            return
        prev = seq.block_hashes[-1] if seq.block_hashes else None
        computed = seq.token_ids[: num_full * self.block_size]
        for i, h in enumerate(self.full_block_hashes(computed, start, prev), start):
            block = self.blocks[seq.block_table[i]]
            if block.hash is None and h not in self._by_hash:
                block.hash = h
                self._by_hash[h] = block.block_id
                tokens = tuple(computed[i * self.block_size : (i + 1) * self.block_size])
                self._remember(block, seq.block_hashes[-1] if seq.block_hashes else None, tokens)
            seq.block_hashes.append(h)

    def _remember_tail(self, seq: CacheUser) -> None:
        """Index ``seq``'s partly filled last computed block, about to be freed."""
        num_full, held = divmod(seq.num_computed_tokens, self.block_size)
        if not (self.enable_prefix_caching and held) or num_full >= len(seq.block_table):
            return
        block = self.blocks[seq.block_table[num_full]]
        if block.ref_count != 1 or block.hash is not None or num_full > len(seq.block_hashes):
            return
        parent = seq.block_hashes[num_full - 1] if num_full else None
        start = num_full * self.block_size
        self._remember(block, parent, tuple(seq.token_ids[start : start + held]))

    def free(self, seq: CacheUser) -> None:
        """Release ``seq``'s blocks (tail first, so prefixes are evicted last)."""
        self._remember_tail(seq)
        for block_id in reversed(seq.block_table):
            block = self.blocks[block_id]
            block.ref_count -= 1
            if block.ref_count == 0:
                if block.content is None:
                    self._free[block_id] = None
                    self._free.move_to_end(block_id, last=False)  # no content: reuse first
                else:
                    self._free[block_id] = None
        seq.block_table.clear()
        seq.block_hashes.clear()
