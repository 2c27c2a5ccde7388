"""Layers shared by the model zoo. Field tensors are [B, F, D] with F = categorical + numeric."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from recloss.data.schema import Lookup, Schema


def field_offsets(cardinalities: Sequence[int]) -> torch.Tensor:
    """First row of each field in a fused table: [0, c0, c0 + c1, ...] (int64, one per field)."""
    sizes = torch.tensor([0, *cardinalities[:-1]], dtype=torch.long)
    return torch.cumsum(sizes, dim=0)


class _DistinctRows(torch.autograd.Function):
    """`weight[rows][inverse]`, whose gradient is the coalesced sparse `[U, D]` of the U rows.

    The duplicates' gradients are summed by one `index_add_` into the small `[U, D]` block, in
    the batch's order (what coalescing the `[B * F, D]` sparse gradient of `nn.Embedding` does,
    bit for bit), and the sparse result is marked coalesced: `rows` are distinct and sorted.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, rows: torch.Tensor, inverse: torch.Tensor):
        ctx.save_for_backward(rows, inverse)
        ctx.table_rows = weight.shape[0]
        distinct = weight.index_select(0, rows)
        return distinct.index_select(0, inverse.flatten()).view(*inverse.shape, weight.shape[1])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        rows, inverse = ctx.saved_tensors
        flat = grad.reshape(-1, grad.shape[-1])
        summed = flat.new_zeros(rows.shape[0], flat.shape[1]).index_add_(0, inverse.flatten(), flat)
        size = (ctx.table_rows, flat.shape[1])
        sparse = torch.sparse_coo_tensor(
            rows.unsqueeze(0), summed, size, check_invariants=False, is_coalesced=True
        )
        # Autograd "steals" a gradient nothing else references into `.grad` through a shallow
        # copy that drops the coalesced flag; a gradient still referenced is cloned, flag kept.
        ctx.gradient = sparse
        return sparse, None, None


class FeaturesEmbedding(nn.Module):
    """All categorical fields in one fused table, numeric fields as value times a field vector.

    `forward` gives [B, F_cat + F_num, dim]. `last_rows` holds the [B, F_cat, dim] rows looked up
    by the latest forward in training mode (None in eval mode) so the trainer can regularise
    exactly the rows a batch touches. Weights start as N(0, init_std^2); `sparse` tables get
    sparse gradients, for LazyAdam's row-wise updates. Given the batch's `Lookup` while gradients
    are recorded for a sparse table (training, and the hypergradients' validation passes), the U
    distinct rows are looked up once and the gradient is their coalesced `[U, D]` block;
    otherwise (no lookup, no gradient, dense tables) it is a plain `nn.Embedding` lookup.
    torch.func transforms cannot see through the distinct rows' autograd Function: the
    hypergradients hand them batches without a lookup.
    """

    def __init__(self, schema: Schema, dim: int, sparse: bool = True, init_std: float = 0.01):
        super().__init__()
        self.table = nn.Embedding(sum(schema.cardinalities), dim, sparse=sparse)
        self.register_buffer("offsets", field_offsets(schema.cardinalities), persistent=False)
        self.numeric = (
            nn.Parameter(torch.empty(len(schema.num_fields), dim)) if schema.num_fields else None
        )
        self.last_rows: torch.Tensor | None = None
        for weight in (self.table.weight, self.numeric):
            if weight is not None:
                nn.init.normal_(weight, std=init_std)

    def forward(
        self, x_cat: torch.Tensor, x_num: torch.Tensor | None = None, lookup: Lookup | None = None
    ) -> torch.Tensor:
        rows = self._rows(x_cat, lookup)
        self.last_rows = rows if self.training else None
        if self.numeric is None:
            return rows
        if x_num is None:
            raise ValueError(f"the schema has {len(self.numeric)} numeric fields but x_num is None")
        return torch.cat([rows, x_num.unsqueeze(-1) * self.numeric], dim=1)

    def _rows(self, x_cat: torch.Tensor, lookup: Lookup | None) -> torch.Tensor:
        """The [B, F_cat, dim] table rows of `x_cat`."""
        if lookup is None or not (self.table.sparse and torch.is_grad_enabled()):
            return self.table(x_cat + self.offsets)
        return _DistinctRows.apply(self.table.weight, self.table_rows(lookup), lookup.inverse)

    def table_rows(self, lookup: Lookup) -> torch.Tensor:
        """The distinct table rows (int64 [U], sorted) of a batch's `Lookup`."""
        return self.offsets.index_select(0, lookup.fields) + lookup.values

    def __getstate__(self) -> dict:
        # last_rows belongs to an autograd graph, which neither deepcopy nor pickle can copy.
        return {**self.__dict__, "last_rows": None}


class FeaturesLinear(nn.Module):
    """First-order term: a bias plus an n_outputs-wide weight per feature value, summed over fields.

    The weights are a FeaturesEmbedding of width n_outputs, so numeric fields contribute
    value * w_field, i.e. a dense Linear(F_num, n_outputs) without bias.
    """

    def __init__(self, schema: Schema, sparse: bool = True):
        super().__init__()
        self.weights = FeaturesEmbedding(schema, schema.n_outputs, sparse, init_std=0.0)
        self.bias = nn.Parameter(torch.zeros(schema.n_outputs))

    def forward(
        self, x_cat: torch.Tensor, x_num: torch.Tensor | None = None, lookup: Lookup | None = None
    ) -> torch.Tensor:
        return self.weights(x_cat, x_num, lookup).sum(dim=1) + self.bias


class Dropout(nn.Module):
    """Inverted dropout whose masks come from 16 random bits per element.

    `nn.Dropout` draws a Bernoulli sample per element; on CPU that cost more than the forward
    matmul of the 400-wide layer it follows (batch 4096), here one 64-bit draw makes four masks
    (about 4x faster, `benchmarks/dropout_speed.py`). The drop probability is rounded to a
    multiple of 1/65536, and the same seed gives the same masks.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        dropped = min(round(p * 65536), 65535)  # of the 65536 values of 16 bits
        self.threshold = dropped - 32768  # keep where the signed 16 bits are >= this
        self.scale = 65536 / (65536 - dropped)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        n = x.numel()
        words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device)
        bits = words.random_(-(2**63), None).view(torch.int16)[:n].view(x.shape)
        return x * (bits >= self.threshold).to(x.dtype).mul_(self.scale)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class MLP(nn.Sequential):
    """Hidden layers Linear -> [BatchNorm] -> ReLU -> [Dropout], then an optional output Linear."""

    def __init__(
        self,
        in_dim: int,
        hidden_dims: Sequence[int],
        dropout: float = 0.0,
        batch_norm: bool = False,
        out_dim: int | None = None,
    ):
        layers: list[nn.Module] = []
        for dim in hidden_dims:
            layers.append(nn.Linear(in_dim, dim))
            if batch_norm:
                layers.append(nn.BatchNorm1d(dim))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(Dropout(dropout))
            in_dim = dim
        if out_dim is not None:
            layers.append(nn.Linear(in_dim, out_dim))
        super().__init__(*layers)
        self.out_dim = in_dim if out_dim is None else out_dim


class BiInteraction(nn.Module):
    """NFM's bi-interaction pooling, sum over field pairs of v_i * v_j: [B, F, D] -> [B, D]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        square_of_sum = x.sum(dim=1).pow(2)
        sum_of_squares = x.pow(2).sum(dim=1)
        return 0.5 * (square_of_sum - sum_of_squares)


class _PairwiseSum(torch.autograd.Function):
    """The one-output FM term 0.5 * sum_d [(sum_f x)^2 - sum_f x^2], [B, F, D] -> [B, 1].

    Its gradient `g * (sum_f x - x_f)` is one fused pass over [B, F, D]; autograd of the
    formula makes four (two products, the sum of its two branches, the square's backward).
    The backward is itself differentiable and `jvp` is defined, so torch.func's transforms (the
    hypergradients' `jvp` and `unrolled`) see through it.
    """

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm  # one reduction pass, where `vecdot` writes the products
        squares = norm(x.flatten(1), dim=1).square_() - norm(x.sum(dim=1), dim=1).square_()
        return squares.mul_(-0.5).unsqueeze(1)

    @staticmethod
    def setup_context(ctx, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        (x,) = inputs
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        g = grad.reshape(-1, 1, 1)
        return torch.addcmul(g * x.sum(dim=1, keepdim=True), x, g, value=-1)

    @staticmethod
    def jvp(ctx, tangent: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        dot = torch.linalg.vecdot
        pairs = dot(x.sum(dim=1), tangent.sum(dim=1)) - dot(x.flatten(1), tangent.flatten(1))
        return pairs.unsqueeze(1)


class FactorizationMachine(nn.Module):
    """Second-order FM term, [B, F, D] -> [B, n_outputs].

    One output: the paper's sum over field pairs of <v_i, v_j> (the bi-interaction vector summed
    over D). C outputs: a learned Linear(D, C) of the bi-interaction vector.
    """

    def __init__(self, embed_dim: int, n_outputs: int = 1):
        super().__init__()
        self.pool = BiInteraction()
        self.proj = nn.Linear(embed_dim, n_outputs, bias=False) if n_outputs > 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj is None:
            return _PairwiseSum.apply(x)
        return self.proj(self.pool(x))


class InnerProduct(nn.Module):
    """Inner products <v_i, v_j> of all field pairs i < j, [B, F, D] -> [B, F(F-1)/2]."""

    def __init__(self, num_fields: int):
        super().__init__()
        rows, cols = torch.triu_indices(num_fields, num_fields, offset=1)
        self.register_buffer("pairs", rows * num_fields + cols, persistent=False)

    @property
    def num_pairs(self) -> int:
        """Number of field pairs, the output width."""
        return self.pairs.numel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gram = torch.bmm(x, x.transpose(1, 2))  # [B, F, F]
        return gram.flatten(1).index_select(1, self.pairs)


class InteractingLayer(nn.Module):
    """AutoInt's interacting layer: multi-head self-attention over fields plus a residual.

    [B, F, in_dim] -> [B, F, heads * head_dim]; the attention scores are the paper's unscaled
    inner products <W_q e_i, W_k e_j>, the output ReLU(concat of heads + W_res e).
    """

    def __init__(self, in_dim: int, head_dim: int, heads: int, residual: bool = True):
        super().__init__()
        self.heads = heads
        self.out_dim = heads * head_dim
        self.qkv = nn.Linear(in_dim, 3 * self.out_dim, bias=False)
        self.residual = nn.Linear(in_dim, self.out_dim, bias=False) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, fields, _ = x.shape
        q, k, v = self.qkv(x).view(batch, fields, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        # Plain matmuls rather than the fused scaled_dot_product_attention kernels: those support
        # neither forward-mode AD nor double backward, which AutoLoss's hypergradients need.
        scores = torch.softmax(q @ k.transpose(-2, -1), dim=-1)  # [B, H, F, F]
        out = (scores @ v).transpose(1, 2).reshape(batch, fields, self.out_dim)
        if self.residual is not None:
            out = out + self.residual(x)
        return torch.relu(out)


class CrossNetwork(nn.Module):
    """DCN-v2 full-rank cross layers x_{l+1} = x_0 * (W_l x_l + b_l) + x_l: [B, K] -> [B, K]."""

    def __init__(self, dim: int, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(dim, dim) for _ in range(num_layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for layer in self.layers:
            x = x0 * layer(x) + x
        return x


class CompressedInteraction(nn.Module):
    """xDeepFM's compressed interaction network (CIN): [B, F, D] -> [B, sum(sizes)].

    Map h of layer k is `sum_{i,j} W[h, i, j] * x_{k-1}[i] * x_0[j]`, elementwise over the D
    embedding dimensions (a 1x1 convolution over the outer products of the two layers' fields,
    no activation, as in the paper's equation 6); each layer's maps are summed over D.
    """

    def __init__(self, n_fields: int, sizes: Sequence[int]):
        super().__init__()
        widths = [n_fields, *sizes[:-1]]  # each layer's input maps
        self.layers = nn.ModuleList(
            nn.Conv1d(width * n_fields, size, kernel_size=1)
            for width, size in zip(widths, sizes, strict=True)
        )
        self.out_dim = sum(sizes)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        batch, _, dim = x0.shape
        x, pooled = x0, []
        for layer in self.layers:
            outer = (x.unsqueeze(2) * x0.unsqueeze(1)).reshape(batch, -1, dim)  # [B, H*F, D]
            x = layer(outer)
            pooled.append(x.sum(dim=2))
        return torch.cat(pooled, dim=1)
