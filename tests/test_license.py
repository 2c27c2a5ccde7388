"""The LICENSE file is the Apache License 2.0 that pyproject.toml declares."""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# sha256 of https://www.apache.org/licenses/LICENSE-2.0.txt, appendix placeholder unfilled
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
COPYRIGHT = "   Copyright 2026 the recloss authors\n"
PLACEHOLDER = "   Copyright [yyyy] [name of copyright owner]\n"


def test_license_is_the_unmodified_apache_2_text_with_our_copyright():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.count(COPYRIGHT) == 1
    canonical = text.replace(COPYRIGHT, PLACEHOLDER).encode("utf-8")
    assert hashlib.sha256(canonical).hexdigest() == APACHE_2_SHA256


def test_pyproject_declares_apache_2():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert any(
        line.startswith("license =") and '"Apache-2.0"' in line for line in pyproject.splitlines()
    )
