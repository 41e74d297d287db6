"""The shared reference material (``../shared``: samples, SII schemas, LibreDTE cases), read through
the one setting ``BMS_SHARED_DIR``. Without it, the tests that need it skip, saying why."""
from pathlib import Path

import pytest
from django.conf import settings

SHARED_DIR = Path(settings.BMS_SHARED_DIR)
SAMPLES_DIR = SHARED_DIR / "samples"
needs_samples = pytest.mark.skipif(
    not SAMPLES_DIR.is_dir(), reason=f"shared samples not found at {SAMPLES_DIR} (set BMS_SHARED_DIR; default ../shared)"
)
