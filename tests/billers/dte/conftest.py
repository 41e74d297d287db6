import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def shared_dir() -> Path | None:
    path = Path(os.environ.get("BMS_SHARED_DIR") or PROJECT_ROOT.parent / "shared")
    return path if (path / "sii" / "xsd" / "DTE_v10.xsd").is_file() else None


SHARED = shared_dir()
NO_SHARED_REASON = "needs the shared SII material (set BMS_SHARED_DIR; default ../shared)"


@pytest.fixture
def shared() -> Path:
    if SHARED is None:
        pytest.skip(NO_SHARED_REASON)
    return SHARED


@pytest.fixture
def schema_dir(shared) -> Path:
    return shared / "sii" / "xsd"
