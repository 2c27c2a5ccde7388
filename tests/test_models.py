"""The model zoo: shapes, layers against brute force, the fused embedding, training, parameters."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.func import functional_call, jvp

from recloss.data.schema import Batch, Schema
from recloss.errors import ConfigError
from recloss.models import MODELS, build_model, default_params
from recloss.models.layers import (
    BiInteraction,
    CompressedInteraction,
    Dropout,
    FactorizationMachine,
    FeaturesEmbedding,
    FeaturesLinear,
    InnerProduct,
    InteractingLayer,
    field_offsets,
)

ALL = ["lr", "fm", "widedeep", "deepfm", "ipnn", "nfm", "autoint", "dcnv2", "xdeepfm"]
INTERACTION = [name for name in ALL if name != "lr"]
CARDS = (5, 7, 4)
OFFSETS = (0, 5, 12)  # where each field of CARDS starts in the fused table
# Small sizes keep the file fast; the defaults are exercised by the shape tests.
SMALL = {
    "widedeep": {"hidden_dims": (32, 32), "dropout": 0.0},
    "deepfm": {"hidden_dims": (32, 32), "dropout": 0.0},
    "ipnn": {"hidden_dims": (32, 32), "dropout": 0.0},
    "nfm": {"hidden_dims": (32,), "dropout": 0.0, "bi_dropout": 0.0},
    "autoint": {"num_layers": 2, "head_dim": 8},
    "dcnv2": {"cross_layers": 2, "hidden_dims": (32, 32)},
    "xdeepfm": {"cin_sizes": (8, 4), "hidden_dims": (32, 32), "dropout": 0.0},
}


def make_schema(task: str = "binary", numeric: int = 0, cards: tuple[int, ...] = CARDS) -> Schema:
    return Schema(
        task=task,
        num_classes=2 if task == "binary" else 5,
        cat_fields=tuple(f"c{i}" for i in range(len(cards))),
        cardinalities=cards,
        num_fields=tuple(f"n{i}" for i in range(numeric)),
    )


def randomize(model: nn.Module, std: float = 0.3) -> nn.Module:
    """Every parameter drawn from N(0, std^2): no zero-initialised weight hides a field."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(std=std)
    return model


def rows_of(batch: Batch, rows: slice) -> Batch:
    x_num = None if batch.x_num is None else batch.x_num[rows]
    return Batch(batch.x_cat[rows], x_num, batch.y[rows])


def make_batch(schema: Schema, size: int = 6, seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    cols = [torch.randint(0, c, (size,), generator=gen) for c in schema.cardinalities]
    x_cat = torch.stack(cols, dim=1).to(torch.int32)
    x_num = torch.randn(size, len(schema.num_fields), generator=gen) if schema.num_fields else None
    y = torch.randint(0, schema.num_classes, (size,), generator=gen)
    return Batch(x_cat, x_num, y)


def test_registry_holds_the_zoo_with_descriptions():
    assert sorted(ALL) == MODELS.names()
    for name in ALL:
        assert MODELS.get(name).__doc__.strip().splitlines()[0]
    assert default_params("deepfm") == {
        "hidden_dims": (400, 400, 400),
        "dropout": 0.5,
        "batch_norm": False,
    }
    assert default_params("AutoInt")["num_layers"] == 3


@pytest.mark.parametrize("numeric", [0, 2])
@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("name", ALL)
def test_output_shape(name, task, numeric):
    schema = make_schema(task, numeric)
    model = build_model(name, schema, embed_dim=4)
    logits = model(make_batch(schema))
    expected = (6,) if task == "binary" else (6, 5)
    assert logits.shape == expected
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    # in eval mode each row's logits depend on that row alone
    model.eval()
    with torch.no_grad():
        batch = make_batch(schema)
        whole = model(batch)
        alone = [model(rows_of(batch, slice(i, i + 1))) for i in range(6)]
    assert torch.allclose(whole, torch.cat(alone), atol=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_every_field_changes_the_logits(name):
    schema = make_schema(numeric=2)
    model = randomize(build_model(name, schema, embed_dim=4, **SMALL.get(name, {}))).eval()
    batch = make_batch(schema, size=16)
    changed = []
    with torch.no_grad():
        before = model(batch)
        for j, card in enumerate(schema.cardinalities):
            x_cat = batch.x_cat.clone()
            x_cat[:, j] = (x_cat[:, j] + 1) % card
            changed.append(model(Batch(x_cat, batch.x_num, batch.y)))
        for j in range(len(schema.num_fields)):
            x_num = batch.x_num.clone()
            x_num[:, j] += 1.0
            changed.append(model(Batch(batch.x_cat, x_num, batch.y)))
    assert len(changed) == 5
    assert all((after - before).abs().max() > 1e-3 for after in changed)


@pytest.mark.parametrize("name", ALL)
def test_eval_mode_is_deterministic_and_state_dict_round_trips(name):
    schema = make_schema(numeric=1)
    batch = make_batch(schema)
    model = randomize(build_model(name, schema, embed_dim=4))
    if any(isinstance(m, Dropout) for m in model.modules()):  # dropout is on in train mode
        torch.manual_seed(0)
        noisy = model(batch)
        torch.manual_seed(1)
        assert not torch.equal(model(batch), noisy)
    model.eval()
    with torch.no_grad():
        first, second = model(batch), model(batch)
    assert torch.equal(first, second)
    torch.manual_seed(1)
    other = build_model(name, schema, embed_dim=4).eval()
    with torch.no_grad():
        assert not torch.allclose(other(batch), first)  # a fresh model differs ...
        other.load_state_dict(model.state_dict())
        assert torch.equal(other(batch), first)  # ... until it has the weights


def planted_batch(size: int, gen: torch.Generator) -> Batch:
    """Label = parity of field 0 XOR parity of field 1: no single field says anything."""
    x = torch.randint(2, 10, (size, 4), generator=gen, dtype=torch.int32)
    return Batch(x, None, ((x[:, 0] % 2) ^ (x[:, 1] % 2)).long())


def train_planted(name: str, steps: int = 150) -> float:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    schema = make_schema(cards=(10,) * 4)
    model = build_model(name, schema, embed_dim=8, sparse=True, **SMALL.get(name, {}))
    sparse = [m.weight for m in model.modules() if isinstance(m, nn.Embedding)]
    dense = [p for p in model.parameters() if all(p is not s for s in sparse)]
    opts = [torch.optim.SparseAdam(sparse, lr=3e-3), torch.optim.Adam(dense, lr=3e-3)]
    model.train()
    for _ in range(steps):
        batch = planted_batch(256, gen)
        loss = nn.functional.binary_cross_entropy_with_logits(model(batch), batch.y.float())
        for opt in opts:
            opt.zero_grad()
        loss.backward()
        for opt in opts:
            opt.step()
    test = planted_batch(2048, gen)
    model.eval()
    with torch.no_grad():
        return roc_auc_score(test.y.numpy(), model(test).numpy())


@pytest.mark.parametrize("name", INTERACTION)
def test_interaction_models_learn_a_planted_field_pair(name):
    assert train_planted(name) > 0.95


def test_logistic_regression_cannot_learn_the_planted_pair():
    assert train_planted("lr") < 0.6


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("name", ALL)
def test_models_support_forward_mode_ad_and_double_backward(name):
    # AutoLoss's hypergradients take a torch.func.jvp of the logits and differentiate through
    # a gradient step: fused kernels without those derivatives would break them.
    schema = make_schema("multiclass", numeric=1)
    model = build_model(name, schema, embed_dim=4, **SMALL.get(name, {})).double().eval()
    batch = make_batch(schema)
    batch = Batch(batch.x_cat, batch.x_num.double(), batch.y)
    with torch.no_grad():  # LR's weights start at zero, where its second derivative vanishes
        for p in model.parameters():
            p.normal_(std=0.3)
    params = {k: p.detach() for k, p in model.named_parameters()}
    tangents = {k: torch.randn_like(p) for k, p in params.items()}

    def logits(ps: dict[str, torch.Tensor]) -> torch.Tensor:
        return functional_call(model, ps, (batch,))

    _, directional = jvp(logits, (params,), (tangents,))
    shifted = [{k: p + e * tangents[k] for k, p in params.items()} for e in (1e-6, -1e-6)]
    assert torch.allclose(directional, (logits(shifted[0]) - logits(shifted[1])) / 2e-6, atol=1e-6)
    weights = list(model.parameters())
    grads = torch.autograd.grad(model(batch).square().sum(), weights, create_graph=True)
    penalty = sum(g.to_dense().square().sum() for g in grads)
    assert any(g.abs().sum() > 0 for g in torch.autograd.grad(penalty, weights))


@pytest.mark.parametrize("sparse", [True, False])
def test_embedding_gradient_is_sparse_when_asked(sparse):
    schema = make_schema(numeric=1)
    model = build_model("deepfm", schema, embed_dim=4, sparse=sparse, hidden_dims=(8,))
    model(make_batch(schema)).sum().backward()
    tables = [m.weight for m in model.modules() if isinstance(m, nn.Embedding)]
    assert len(tables) == 2  # embedding and linear term
    assert all(t.grad.is_sparse == sparse for t in tables)


def test_fused_offsets_send_field_i_index_j_to_its_row():
    schema = make_schema(cards=(3, 5, 2))
    emb = FeaturesEmbedding(schema, dim=1)
    with torch.no_grad():
        emb.table.weight.copy_(torch.arange(10, dtype=torch.float32).unsqueeze(1))
    x = torch.tensor([[0, 0, 0], [2, 4, 1], [1, 3, 0]], dtype=torch.int32)
    rows = emb(x).squeeze(-1)
    assert field_offsets(schema.cardinalities).tolist() == [0, 3, 8]
    assert rows.tolist() == [[0, 3, 8], [2, 7, 9], [1, 6, 8]]


def test_numeric_fields_are_value_times_field_vector_and_a_dense_linear_term():
    schema = make_schema(numeric=2)
    batch = make_batch(schema)
    emb = FeaturesEmbedding(schema, dim=3)
    out = emb(batch.x_cat, batch.x_num)
    assert out.shape == (6, 5, 3)
    assert torch.equal(out[:, :3], emb.table.weight[batch.x_cat.long() + emb.offsets])
    assert torch.allclose(out[:, 3:], batch.x_num.unsqueeze(-1) * emb.numeric)
    linear = FeaturesLinear(make_schema("multiclass", numeric=2))
    with torch.no_grad():
        linear.weights.numeric.normal_()
        linear.bias.fill_(0.5)
    expected = batch.x_num @ linear.weights.numeric + 0.5  # categorical weights start at zero
    assert torch.allclose(linear(batch.x_cat, batch.x_num), expected)


def test_last_rows_in_train_mode_and_none_in_eval_mode():
    schema = make_schema(numeric=2)
    model = build_model("fm", schema, embed_dim=4)
    batch = make_batch(schema)
    model.train()
    model(batch)
    rows = model.embedding.last_rows
    assert rows.shape == (6, 3, 4)  # categorical rows only
    assert rows.requires_grad
    table = model.embedding.table.weight
    index = batch.x_cat.long() + model.embedding.offsets
    assert torch.equal(rows, table[index])
    # a penalty on them (the trainer's lookup_l2) reaches exactly the looked-up table rows
    rows.pow(2).sum().backward()
    expected = torch.zeros_like(table).index_add_(
        0, index.flatten(), 2 * rows.detach().flatten(0, 1)
    )
    assert torch.allclose(table.grad.to_dense(), expected)
    model.eval()
    model(batch)
    assert model.embedding.last_rows is None


def test_model_with_last_rows_can_be_deep_copied():
    schema = make_schema()
    model = build_model("deepfm", schema, embed_dim=4, hidden_dims=(8,)).train()
    batch = make_batch(schema)
    model(batch)
    clone = copy.deepcopy(model)
    assert clone.embedding.last_rows is None
    assert model.embedding.last_rows is not None
    assert torch.equal(clone.eval()(batch), model.eval()(batch))


def test_logistic_regression_exposes_its_weight_table_as_embedding():
    schema = make_schema("multiclass")
    model = randomize(build_model("lr", schema)).train()
    batch = make_batch(schema)
    model(batch)
    assert model.embedding is model.linear.weights
    rows = model.embedding.last_rows
    assert rows.shape == (6, 3, 5)
    assert torch.equal(
        rows, model.embedding.table.weight[batch.x_cat.long() + torch.tensor(OFFSETS)]
    )


def test_lr_and_fm_logits_equal_a_hand_computation():
    """Binary LR: bias + one weight per value + w * number; FM adds <v_i, v_j> of field pairs."""
    schema = make_schema(numeric=1)
    batch = make_batch(schema)
    lr = randomize(build_model("lr", schema)).eval()
    fm = randomize(build_model("fm", schema, embed_dim=2), std=0.5).eval()

    def first_order(linear: FeaturesLinear, values: list[int], number: float) -> float:
        w = linear.weights.table.weight[:, 0].tolist()
        rows = sum(w[o + v] for o, v in zip(OFFSETS, values, strict=True))
        return linear.bias.tolist()[0] + rows + linear.weights.numeric.tolist()[0][0] * number

    def pairs(values: list[int], number: float) -> float:
        table, field = fm.embedding.table.weight.tolist(), fm.embedding.numeric[0].tolist()
        vectors = [table[o + v] for o, v in zip(OFFSETS, values, strict=True)]
        vectors.append([number * f for f in field])
        return sum(
            sum(a * b for a, b in zip(vectors[i], vectors[j], strict=True))
            for i, j in itertools.combinations(range(4), 2)
        )

    rows = list(zip(batch.x_cat.tolist(), batch.x_num[:, 0].tolist(), strict=True))
    expected_lr = [first_order(lr.linear, v, n) for v, n in rows]
    expected_fm = [first_order(fm.linear, v, n) + pairs(v, n) for v, n in rows]
    with torch.no_grad():
        assert torch.allclose(lr(batch), torch.tensor(expected_lr), atol=1e-5)
        assert torch.allclose(fm(batch), torch.tensor(expected_fm), atol=1e-5)


def brute_force_pairs(x: torch.Tensor) -> torch.Tensor:
    pairs = itertools.combinations(range(x.shape[1]), 2)
    return torch.stack([(x[:, i] * x[:, j]).sum(-1) for i, j in pairs], dim=1)


def test_fm_layer_equals_brute_force_pairwise_sum():
    x = torch.randn(4, 5, 3, dtype=torch.float64)
    fm = FactorizationMachine(3)(x)
    assert fm.shape == (4, 1)
    assert torch.allclose(fm.squeeze(1), brute_force_pairs(x).sum(1))
    bi = sum(x[:, i] * x[:, j] for i, j in itertools.combinations(range(5), 2))
    assert torch.allclose(BiInteraction()(x), bi)
    multi = FactorizationMachine(3, n_outputs=5).double()
    assert torch.allclose(multi(x), multi.proj(bi))


def test_fm_term_is_differentiable_twice_and_in_forward_mode():
    """The hypergradients differentiate through it: torch.func's jvp and nested grad."""
    x = torch.randn(4, 5, 3, dtype=torch.float64, requires_grad=True)
    fm = FactorizationMachine(3)
    assert torch.autograd.gradgradcheck(fm, (x,))

    def formula(v: torch.Tensor) -> torch.Tensor:
        return BiInteraction()(v).sum(1, keepdim=True)

    tangent = torch.randn_like(x)
    jvp = [torch.func.jvp(f, (x.detach(),), (tangent,))[1] for f in (fm, formula)]
    assert torch.allclose(*jvp)

    def second(f):
        return torch.func.grad(lambda v: torch.func.grad(lambda w: f(w).pow(2).sum())(v).sum())

    assert torch.allclose(second(fm)(x.detach()), second(formula)(x.detach()))


def test_inner_product_layer_equals_brute_force():
    x = torch.randn(4, 6, 3)
    layer = InnerProduct(6)
    assert layer.num_pairs == 15
    assert torch.allclose(layer(x), brute_force_pairs(x), atol=1e-6)


def test_interacting_layer_is_unscaled_attention_with_residual():
    torch.manual_seed(0)
    layer = InteractingLayer(in_dim=3, head_dim=2, heads=2)
    x = torch.randn(4, 5, 3)
    q, k, v = layer.qkv(x).split(4, dim=-1)
    heads = []
    for h in range(2):
        part = slice(2 * h, 2 * h + 2)
        scores = torch.softmax(q[..., part] @ k[..., part].transpose(1, 2), dim=-1)
        heads.append(scores @ v[..., part])
    expected = torch.relu(torch.cat(heads, dim=-1) + layer.residual(x))
    assert torch.allclose(layer(x), expected, atol=1e-6)


def test_params_are_validated_and_converted():
    schema = make_schema()
    model = build_model("DeepFM", schema, embed_dim=4, hidden_dims=[8, 4], dropout=0.1)
    widths = [m.out_features for m in model.dnn if isinstance(m, nn.Linear)]
    assert widths == [8, 4, 1]
    assert [m.p for m in model.dnn if isinstance(m, Dropout)] == [0.1, 0.1]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (
            {"hiden_dims": [8]},
            r"model\.params\.hiden_dims: unknown parameter of deepfm \(did you mean "
            r"hidden_dims\?\); valid: "
            r"hidden_dims, dropout, batch_norm",
        ),
        ({"dropout": 1.5}, r"model\.params\.dropout: .*less than 1"),
        ({"hidden_dims": "wide"}, r"model\.params\.hidden_dims: .*tuple"),
        ({"hidden_dims": [8, 0]}, r"model\.params\.hidden_dims: .*greater than 0"),
    ],
)
def test_bad_params_raise_config_error_naming_the_key(params, match):
    with pytest.raises(ConfigError, match=match):
        build_model("deepfm", make_schema(), **params)


def test_bad_params_of_other_models():
    with pytest.raises(ConfigError, match=r"model\.params\.heads: .*greater than or equal to 1"):
        build_model("autoint", make_schema(), heads=0)
    with pytest.raises(ConfigError, match=r"model\.params\.batch_norm: .*boolean"):
        build_model("dcnv2", make_schema(), batch_norm="maybe")
    with pytest.raises(ConfigError, match=r"model\.params\.cin_sizes: .*at least 1 item"):
        build_model("xdeepfm", make_schema(), cin_sizes=())
    with pytest.raises(ConfigError, match=r"unknown parameter of fm; valid: none"):
        build_model("fm", make_schema(), dropout=0.1)


def test_unknown_model_and_bad_embed_dim_raise_config_error():
    with pytest.raises(ConfigError, match="unknown model 'xdeepfn'"):
        build_model("xdeepfn", make_schema())
    with pytest.raises(ConfigError, match="model.embed_dim"):
        build_model("fm", make_schema(), embed_dim=0)


@pytest.mark.parametrize("p", [0.5, 0.2, 0.05])
def test_dropout_drops_at_its_rate_and_scales_the_rest(p):
    torch.manual_seed(0)
    y = Dropout(p).train()(torch.ones(600, 500))
    dropped = float((y == 0).float().mean())
    assert dropped == pytest.approx(p, abs=4 * (p * (1 - p) / y.numel()) ** 0.5 + 1 / 65536)
    assert torch.allclose(y[y != 0], torch.tensor(1 / (1 - p)), rtol=1e-4)


def test_dropout_gradient_is_the_mask_and_eval_mode_is_the_identity():
    x = torch.randn(7, 3, 5, requires_grad=True)  # 105 elements: not a multiple of 4 words
    layer = Dropout(0.5)
    y = layer(x)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).to(x.dtype) * 2.0)
    assert torch.equal(layer.eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)


def test_dropout_masks_follow_the_seed_and_differ_between_calls():
    layer, x = Dropout(0.3), torch.ones(40, 40)
    torch.manual_seed(3)
    first, second = layer(x), layer(x)
    torch.manual_seed(3)
    assert torch.equal(layer(x), first)
    assert not torch.equal(first, second)
    with pytest.raises(ValueError, match="dropout"):
        Dropout(1.0)


def test_cin_is_the_papers_sum_over_field_pairs_of_weighted_elementwise_products():
    torch.manual_seed(0)
    x0 = torch.randn(2, 3, 4)  # [B, F, D]
    cin = CompressedInteraction(3, (5, 2))
    expected, x = [], x0
    for conv in cin.layers:
        w = conv.weight.view(conv.out_channels, x.shape[1], 3)  # [H_k, H_{k-1}, F]
        x = torch.einsum("hij,bid,bjd->bhd", w, x, x0) + conv.bias.view(1, -1, 1)
        expected.append(x.sum(dim=2))
    torch.testing.assert_close(cin(x0), torch.cat(expected, dim=1))
    assert cin(x0).shape == (2, 7) and cin.out_dim == 7
