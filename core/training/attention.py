"""Attention for packed (padding-free) batches: each packed sequence attends only to itself, at its own cost.

TRL's padding-free collator flattens a micro batch into one row and passes the sequence boundaries as
`cu_seq_lens_q`. FlashAttention's varlen kernels use them directly; PyTorch's SDPA instead builds one
block-diagonal mask over the whole row and computes every masked block, so a packed batch costs more
than a padded one. `segment_sdpa`, registered through transformers' `AttentionInterface`, runs SDPA on
each sequence of the row with a plain causal mask: the same result, the cost of the sequences alone.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import torch

SEGMENT_SDPA = "segment_sdpa"
_FLASH_KWARGS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k", "seq_idx")


def segment_sdpa_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """SDPA per packed sequence when the batch is one padding-free row, plain SDPA otherwise.

    With sequence boundaries the block-diagonal `attention_mask` is not needed: each slice is causal on its own.

    Shapes as transformers' attention functions: query/key/value (batch, heads, tokens, head_dim), output
    (batch, tokens, heads, head_dim).
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    boundaries = kwargs.get("cu_seq_lens_q")
    rest = {name: value for name, value in kwargs.items() if name not in _FLASH_KWARGS}
    if boundaries is None or query.shape[0] != 1 or query.shape[2] != key.shape[2]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **rest)
    edges = [int(edge) for edge in boundaries.tolist()]
    outputs = [
        sdpa_attention_forward(module, query[:, :, start:end], key[:, :, start:end], value[:, :, start:end], None,
                               dropout=dropout, scaling=scaling, is_causal=True, **rest)[0]
        for start, end in pairwise(edges) if end > start
    ]
    return torch.cat(outputs, dim=1), None


def packed_attention_implementation() -> str:
    """The attention for packed batches: FlashAttention 2 on a GPU that has it, else `segment_sdpa` (registered here)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    from transformers.utils import is_flash_attn_2_available

    if torch.cuda.is_available() and is_flash_attn_2_available():
        return "flash_attention_2"
    AttentionInterface.register(SEGMENT_SDPA, segment_sdpa_attention)
    # SDPA's masks keep the plain-SDPA path (a batch without boundaries) exact.
    AttentionMaskInterface.register(SEGMENT_SDPA, sdpa_mask)
    return SEGMENT_SDPA
