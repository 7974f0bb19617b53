import pathlib
import sys

# Test helpers (notebook.py, seed_cells.py, oracles.py) import as plain modules.
sys.path.insert(0, str(pathlib.Path(__file__).parent))
