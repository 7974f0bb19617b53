import os
import pathlib
import sys

# Test helpers (notebook.py, seed_cells.py, oracles.py) import as plain modules.
sys.path.insert(0, str(pathlib.Path(__file__).parent))

# Tests count compiles: no disk cache unless a test turns one on (tests/test_cache.py does, in tmp dirs).
os.environ["LLGRAD_CACHE"] = "0"
