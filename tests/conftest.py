import os
import pathlib
import sys

# Test helpers (notebook.py, seed_cells.py, oracles.py) import as plain modules.
sys.path.insert(0, str(pathlib.Path(__file__).parent))

# Tests count compiles: no disk cache unless a test turns one on (tests/test_cache.py does, in tmp dirs).
os.environ["LLGRAD_CACHE"] = "0"

import pytest  # noqa: E402
from llgrad.runtime import executor  # noqa: E402


@pytest.fixture(autouse=True)
def _no_pending_from_earlier_tests():
    """Each test starts with nothing pending: what an earlier test left (live module-level values,
    positions of dropped graphs) is realized first, so no test sees another's realization."""
    executor.realize_pending()
    yield
