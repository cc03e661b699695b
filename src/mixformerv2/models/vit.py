"""ViT building blocks with asymmetric mixed attention.

Module and parameter names follow the official implementation so that official
state dicts load without renaming (``patch_embed.proj``, ``blocks.i.attn.qkv`` ...).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

BACKBONE_LN_EPS = 1e-6


def sincos_pos_embed(embed_dim: int, grid_size: int) -> np.ndarray:
    """2-D sin-cos table (grid_size**2, embed_dim) exactly as the official float32 numpy code.

    The first half of the channels encodes the column (x) index, the second half the row.
    """
    quarter = embed_dim // 4
    omega = np.arange(quarter, dtype=np.float32) / np.float32(quarter)
    omega = (1.0 / 10000**omega).astype(np.float32)
    rows, cols = np.meshgrid(
        np.arange(grid_size, dtype=np.float32), np.arange(grid_size, dtype=np.float32), indexing="ij"
    )

    def encode(pos: np.ndarray) -> np.ndarray:
        out = np.einsum("m,d->md", pos.reshape(-1), omega)  # float32 outer product
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    return np.concatenate([encode(cols), encode(rows)], axis=1).astype(np.float32)


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, H*W, C), row-major tokens


def _cpu_bf16_autocast() -> bool:
    try:
        return torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled() and torch.get_autocast_cpu_dtype() == torch.bfloat16


def attend(q: Tensor, k: Tensor, v: Tensor, key_bias: Tensor | None = None) -> Tensor:
    """softmax(q k^T / sqrt(head_dim) + key_bias) v over (B, heads, N, head_dim) tensors.

    ``key_bias`` (1, Nk) is added to every query's logits (see :func:`template_copies_bias`).
    The fused kernel, except under bfloat16 autocast on the CPU (bf16 training): there the fused
    CPU kernel is slower than in float32, and explicit bfloat16 matmuls (softmax computed in float,
    stored in bfloat16) take about 0.6x the float32 time forward + backward (tiny recipe, 2 cores).
    """
    if q.device.type == "cpu" and _cpu_bf16_autocast():
        q, k, v = (t.to(torch.bfloat16) for t in (q, k, v))
        scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)
        if key_bias is not None:
            scores = scores + key_bias.to(scores.dtype)
        return scores.softmax(-1) @ v
    if key_bias is not None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=key_bias.to(q.dtype))
    return F.scaled_dot_product_attention(q, k, v)


def template_copies_bias(num_template_tokens: int, num_tokens: int, copies: int,
                         device: torch.device | None = None) -> Tensor | None:
    """Key bias that makes attention over one template equal attention over ``copies`` identical ones.

    Identical keys with identical values are one key counted ``copies`` times in the softmax, i.e.
    one key whose logit is raised by log(copies). ``None`` for a single copy.
    """
    if copies == 1:
        return None
    bias = torch.zeros(1, num_tokens, dtype=torch.float32, device=device)
    bias[:, :num_template_tokens] = math.log(copies)
    return bias


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, N, heads * head_dim) -> (B, heads, N, head_dim)."""
    b, n, c = x.shape
    return x.view(b, n, num_heads, c // num_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, heads, N, head_dim) -> (B, N, heads * head_dim)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def cached_attention(q: Tensor, k: Tensor, v: Tensor, past_keys: Tensor, past_values: Tensor,
                     num_heads: int) -> Tensor:
    """Attention of new tokens over cached and new keys: ``q`` (B, Nq, C), ``k`` / ``v`` (B, N, C)
    packed as the qkv projection gives them, ``past_*`` (B, heads, P, head_dim); returns (B, Nq, C).

    The tracking step's attention (the search and prediction tokens over the template cache and
    themselves).
    """
    k = torch.cat([past_keys, split_heads(k, num_heads)], dim=2)
    v = torch.cat([past_values, split_heads(v, num_heads)], dim=2)
    return merge_heads(attend(split_heads(q, num_heads), k, v))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact (erf) GELU, as the official blocks
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head attention whose queries can be restricted to a subset of keys.

    ``scale`` = head_dim**-0.5 is what the fused kernel applies by default.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def qkv_heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, N, C) -> q, k, v each (B, heads, N, head_dim)."""
        b, n, _ = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]

    def forward(self, x: Tensor, num_template_tokens: int, last: int | None = None, template_copies: int = 1) -> Tensor:
        """Asymmetric mixed attention over the full sequence.

        The first ``num_template_tokens`` tokens attend only to themselves; all later
        tokens (search + prediction tokens) attend to the whole sequence. ``last``: outputs for
        the last ``last`` tokens only (they attend to everything), e.g. the prediction tokens.
        ``template_copies``: the template tokens stand for that many identical copies of
        themselves (the same template given as online template), which the later tokens see.
        """
        q, k, v = self.qkv_heads(x)
        nt = num_template_tokens
        bias = template_copies_bias(nt, k.shape[2], template_copies, k.device)
        if last is not None:
            return self.proj(merge_heads(attend(q[:, :, -last:], k, v, bias)))
        out_t = attend(q[:, :, :nt], k[:, :, :nt], v[:, :, :nt])  # copies do not change self-attention
        out_s = attend(q[:, :, nt:], k, v, bias)
        return self.proj(merge_heads(torch.cat([out_t, out_s], dim=2)))


class Block(nn.Module):
    """Pre-norm transformer block. ``gamma`` scales both residual branches (depth pruning)."""

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=BACKBONE_LN_EPS)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=BACKBONE_LN_EPS)
        self.mlp = Mlp(dim, mlp_hidden)

    def forward(self, x: Tensor, num_template_tokens: int, gamma: float = 1.0, last: int | None = None,
                template_copies: int = 1) -> Tensor:
        """``last``: compute the outputs of the last ``last`` tokens only (B, last, C);
        ``template_copies``: see :meth:`Attention.forward`."""
        attn = self.attn(self.norm1(x), num_template_tokens, last, template_copies)
        if last is not None:
            x = x[:, -last:]
        if gamma == 1.0:
            x = x + attn
            return x + self.mlp(self.norm2(x))
        x = x + gamma * attn
        return x + gamma * self.mlp(self.norm2(x))
