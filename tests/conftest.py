import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_collection_modifyitems(items):
    """Tests marked slow first (stable order otherwise): under pytest-xdist the longest ones then
    start at once, beside the rest, instead of lengthening the run at its end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
