"""BatchLoader: each row once per epoch, deterministic reshuffles, disjoint rank shards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recloss.data import BatchLoader, SplitArrays
from recloss.data.prefetch import prefetch


def make_split(n: int, with_num: bool = False) -> SplitArrays:
    ids = np.arange(n, dtype=np.int32)
    return SplitArrays(
        x_cat=np.stack([ids, ids * 2], axis=1),
        x_num=ids[:, None].astype(np.float32) / 10 if with_num else None,
        y=(ids % 3).astype(np.int8),
    )


def rows_of(loader: BatchLoader) -> list[int]:
    return [int(v) for batch in loader for v in batch.x_cat[:, 0]]


def test_each_row_once_per_epoch_with_consistent_columns():
    loader = BatchLoader(make_split(103, with_num=True), batch_size=10, shuffle=True, seed=1)
    assert len(loader) == 11
    batches = list(loader)
    assert [len(b) for b in batches] == [10] * 10 + [3]
    assert sorted(rows_of(loader)) == list(range(103))
    for b in batches:
        assert b.x_cat.dtype == torch.int32 and b.y.dtype == torch.int64
        assert b.x_num.dtype == torch.float32
        assert torch.equal(b.x_cat[:, 1], 2 * b.x_cat[:, 0])
        assert torch.equal(b.y, b.x_cat[:, 0].long() % 3)
        assert torch.allclose(b.x_num[:, 0], b.x_cat[:, 0].float() / 10)


def test_unshuffled_order_is_the_split_order():
    loader = BatchLoader(make_split(25), batch_size=8, shuffle=False)
    assert rows_of(loader) == list(range(25))


def test_reshuffle_per_epoch_is_deterministic():
    loader = BatchLoader(make_split(200), batch_size=50, shuffle=True, seed=7)
    first = rows_of(loader)
    loader.set_epoch(1)
    second = rows_of(loader)
    assert first != second and sorted(first) == sorted(second)
    loader.set_epoch(0)
    assert rows_of(loader) == first
    other = BatchLoader(make_split(200), batch_size=50, shuffle=True, seed=8)
    assert rows_of(other) != first


@pytest.mark.parametrize("shuffle", [True, False])
def test_ranks_shard_without_overlap(shuffle):
    split = make_split(103)
    shards = [
        rows_of(BatchLoader(split, 8, shuffle=shuffle, seed=3, rank=r, world_size=3))
        for r in range(3)
    ]
    assert sorted(sum(shards, [])) == list(range(103))
    assert all(not set(a) & set(b) for i, a in enumerate(shards) for b in shards[i + 1 :])


def test_drop_last_gives_every_rank_the_same_full_batches():
    split = make_split(103)
    loaders = [BatchLoader(split, 8, True, rank=r, world_size=3, drop_last=True) for r in range(3)]
    assert {len(loader) for loader in loaders} == {4}  # 103 // 3 = 34 rows -> 4 full batches
    for loader in loaders:
        assert [len(b) for b in loader] == [8] * 4


def test_stopping_early_releases_the_prefetch_thread():
    loader = BatchLoader(make_split(10_000), batch_size=10, shuffle=True)
    for i, _ in enumerate(loader):
        if i == 3:
            break
    assert sorted(rows_of(loader)) == list(range(10_000))


def test_prefetch_reraises_producer_errors_in_order():
    def produce():
        yield 1
        yield 2
        raise ValueError("boom")

    seen = []
    with pytest.raises(ValueError, match="boom"):
        for item in prefetch(produce(), depth=1):
            seen.append(item)
    assert seen == [1, 2]


def test_empty_split_gives_no_batches():
    loader = BatchLoader(make_split(0), batch_size=4, shuffle=True)
    assert len(loader) == 0 and list(loader) == []
