"""Differential fuzzing of llgrad: random op graphs run through llgrad, a float64 NumPy
reference (with running error bounds), finite differences and PyTorch.

graph.py       the graph model (leaves, steps) and its printing as a program
reference.py   reference values: dtype rules, per-op rounding, error bounds
ops.py         the op catalog: each op's call template and reference
builder.py     the graph being drawn, with each value's reference
generators.py  one generator per op group (inplace.py: the in-place ones)
strategies.py  the profiles and the hypothesis strategy `graphs(profile)`
check.py       running one graph through every oracle and comparing
"""
