from pathlib import Path

import pytest

from tests.shared import SHARED_DIR

SHARED = SHARED_DIR if (SHARED_DIR / "sii" / "xsd" / "DTE_v10.xsd").is_file() else None
NO_SHARED_REASON = "needs the shared SII material (set BMS_SHARED_DIR; default ../shared)"


@pytest.fixture
def shared() -> Path:
    if SHARED is None:
        pytest.skip(NO_SHARED_REASON)
    return SHARED


@pytest.fixture
def schema_dir(shared) -> Path:
    return shared / "sii" / "xsd"
