"""The search-efficiency benchmark: a tabular benchmark of recipe curves and replays of search
methods against it (see benchmarks/search_efficiency.py)."""
