"""Differential fuzzing of llgrad: random op graphs run through llgrad, a float64 NumPy
reference (with running error bounds), finite differences and PyTorch.

graph.py       the graph model (leaves, steps) and its printing as a llgrad program
reference.py   reference values: dtype rules, per-op rounding, error bounds
ops.py         the op catalog: each op's call template, reference and generator
strategies.py  hypothesis strategies that build random graphs
check.py       running one graph through every oracle and comparing
"""
