"""AutoLoss learns away a harmful candidate: CE against the flipped label."""

import pytest
import torch
from torch import nn

from recloss.losses import cross_entropy, loss_matrix
from recloss.metrics import evaluate
from recloss.search.autoloss import AutoLoss

FIELDS, CARD = 4, 20
TRAIN, VALID, TEST = 4000, 1000, 2000
LR, BATCH, EPOCHS = 1e-2, 128, 5


def planted_data(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary labels drawn from a logit that sums a planted weight per field value."""
    g = torch.Generator().manual_seed(seed)
    weights = torch.randn(FIELDS, CARD, generator=g)
    x = torch.randint(0, CARD, (TRAIN + VALID + TEST, FIELDS), generator=g)
    logit = weights[torch.arange(FIELDS), x].sum(1)
    return x, torch.bernoulli(torch.sigmoid(logit), generator=g).long()


class Net(nn.Module):
    """A plain user model: embedding per field value, then an MLP."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(FIELDS * CARD, 8)
        self.register_buffer("offsets", torch.arange(FIELDS) * CARD)
        self.mlp = nn.Sequential(nn.Linear(FIELDS * 8, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.embedding(x + self.offsets).flatten(1)).squeeze(1)


def train(mode: str, seed: int = 0) -> tuple[float, AutoLoss]:
    """Test AUC after training with `ce`, fixed equal weights on `[ce, flipped]`, or AutoLoss."""
    x, y = planted_data()
    torch.manual_seed(seed)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    # one controller step per model step, at a learning rate the short run allows; much larger
    # ones (1e-2) can lock the controller into a one-step-greedy label-dependent solution
    autoloss = AutoLoss("binary", ["ce", "flipped"], controller_every=1, controller_lr=3e-3)

    def next_val():
        rows = torch.randint(TRAIN, TRAIN + VALID, (BATCH,))
        return x[rows], y[rows]

    for _ in range(EPOCHS):
        for rows in torch.randperm(TRAIN).split(BATCH):
            logits = model(x[rows])
            if mode == "autoloss":
                loss = autoloss.loss(logits, y[rows])
            elif mode == "ce":
                loss = cross_entropy(logits, y[rows]).mean()
            else:
                loss = loss_matrix(["ce", "flipped"], logits, y[rows]).mean()
            optimizer.zero_grad()
            loss.backward()
            if mode == "autoloss":
                autoloss.update(model, (x[rows], y[rows]), next_val, lr=LR)
            optimizer.step()
    with torch.no_grad():
        scores = torch.sigmoid(model(x[TRAIN + VALID :]))
    return evaluate("binary", y[TRAIN + VALID :].numpy(), scores.numpy())["auc"], autoloss


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: thread hand-offs cost far more than they save on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ce_auc(one_thread) -> float:
    return train("ce")[0]


def test_harmful_candidate_gets_little_weight(ce_auc):
    auc, autoloss = train("autoloss")
    weights = autoloss.on_epoch_end()["selection"]  # last epoch's mean selection probability
    assert weights["flipped"] < 0.25
    assert auc > ce_auc - 0.02
    assert ce_auc > 0.75  # the planted signal is learnable at all


def test_fixed_equal_weights_do_clearly_worse(ce_auc):
    auc, _ = train("fixed")
    assert auc < ce_auc - 0.15
