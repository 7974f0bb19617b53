"""Symbolic integer index expressions.

Views (reshape, permute, expand, slice) are not copies in llgrad: they rewrite
the index at which their source is read. An index is kept in a canonical
linear form, `const + sum(coeff * atom)`, whose atoms are loop variables or
floor divisions / remainders of other linear forms. Bounds of every loop
variable are known, which lets `//` and `%` cancel against the multiplications
that reshapes introduce, so that common view chains end as plain strides.
"""

from __future__ import annotations

import math


class Var:
    """A loop variable ranging over [0, extent)."""

    __slots__ = ("name", "extent")

    def __init__(self, name: str, extent: int) -> None:
        self.name = name
        self.extent = extent

    def bounds(self) -> tuple[int, int]:
        return 0, max(self.extent - 1, 0)

    def __repr__(self) -> str:
        return self.name


class _DivMod:
    """floor(expr / divisor) or expr mod divisor, for a non-negative expr."""

    __slots__ = ("expr", "divisor", "_key")
    symbol = "?"

    def __init__(self, expr: Sym, divisor: int) -> None:
        self.expr = expr
        self.divisor = divisor
        self._key = (self.symbol, expr.key, divisor)

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other._key == self._key

    def __repr__(self) -> str:
        return f"({self.expr} {self.symbol} {self.divisor})"


class FloorDiv(_DivMod):
    __slots__ = ()
    symbol = "floordiv"

    def bounds(self) -> tuple[int, int]:
        lo, hi = self.expr.bounds()
        return lo // self.divisor, hi // self.divisor


class Mod(_DivMod):
    __slots__ = ()
    symbol = "mod"

    def bounds(self) -> tuple[int, int]:
        lo, hi = self.expr.bounds()
        if lo >= 0 and hi < self.divisor:
            return lo, hi
        return 0, self.divisor - 1


class Sym:
    """const + sum(coeff * atom): an immutable, hashable, canonical form."""

    __slots__ = ("terms", "const", "key")

    def __init__(self, terms: dict, const: int = 0) -> None:
        items = tuple(sorted(((a, c) for a, c in terms.items() if c != 0), key=_atom_order))
        self.terms = items
        self.const = const
        self.key = (tuple((_atom_key(a), c) for a, c in items), const)

    # -- construction -------------------------------------------------------
    @staticmethod
    def var(v: Var) -> Sym:
        return Sym({v: 1}) if v.extent > 1 else Sym({})

    @staticmethod
    def of(value: int | Sym) -> Sym:
        return value if isinstance(value, Sym) else Sym({}, int(value))

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other) -> bool:
        return isinstance(other, Sym) and other.key == self.key

    def is_const(self) -> bool:
        return not self.terms

    def __add__(self, other: int | Sym) -> Sym:
        other = Sym.of(other)
        terms = dict(self.terms)
        for a, c in other.terms:
            terms[a] = terms.get(a, 0) + c
        return _recombine(terms, self.const + other.const)

    __radd__ = __add__

    def __mul__(self, k: int) -> Sym:
        k = int(k)
        return Sym({a: c * k for a, c in self.terms}, self.const * k)

    __rmul__ = __mul__

    def bounds(self) -> tuple[int, int]:
        lo = hi = self.const
        for a, c in self.terms:
            alo, ahi = a.bounds()
            if c >= 0:
                lo, hi = lo + c * alo, hi + c * ahi
            else:
                lo, hi = lo + c * ahi, hi + c * alo
        return lo, hi

    def _split(self, d: int) -> tuple[Sym, Sym]:
        """self = d * quotient + rest, with every coefficient of rest not divisible by d."""
        q, r = {}, {}
        for a, c in self.terms:
            if c % d == 0:
                q[a] = c // d
            else:
                r[a] = c
        return Sym(q, self.const // d), Sym(r, self.const % d)

    def floordiv(self, d: int) -> Sym:
        if d == 1:
            return self
        quotient, rest = self._split(d)
        lo, hi = rest.bounds()
        if 0 <= lo and hi < d:
            return quotient
        return quotient + Sym({FloorDiv(rest, d): 1})

    def mod(self, d: int) -> Sym:
        if d == 1:
            return Sym({})
        _, rest = self._split(d)
        lo, hi = rest.bounds()
        if 0 <= lo and hi < d:
            return rest
        return Sym({Mod(rest, d): 1})

    def vars(self) -> set:
        found = set()
        for a, _ in self.terms:
            if isinstance(a, Var):
                found.add(a)
            else:
                found |= a.expr.vars()
        return found

    def coefficient(self, v: Var) -> int | None:
        """The stride of `v` if it appears only linearly, else None."""
        coeff = 0
        for a, c in self.terms:
            if a is v:
                coeff = c
            elif not isinstance(a, Var) and v in a.expr.vars():
                return None
        return coeff

    def __repr__(self) -> str:
        parts = [
            (str(a) if c == 1 else f"{a} * {c}") for a, c in self.terms
        ]
        if self.const or not parts:
            parts.append(str(self.const))
        return " + ".join(parts)


def _atom_key(a) -> tuple:
    return ("v", a.name, a.extent) if isinstance(a, Var) else a._key


def _atom_order(item) -> tuple:
    return _atom_key(item[0])


def _recombine(terms: dict, const: int) -> Sym:
    """Fold c*d*(e floordiv d) + c*(e mod d) back into c*e (undoing a reshape)."""
    for atom in [a for a in terms if isinstance(a, FloorDiv)]:
        partner = Mod(atom.expr, atom.divisor)
        c_mod = terms.get(partner, 0)
        c_div = terms.get(atom, 0)
        if c_mod and c_div == c_mod * atom.divisor:
            del terms[atom], terms[partner]
            inner = atom.expr * c_mod
            for a, c in inner.terms:
                terms[a] = terms.get(a, 0) + c
            const += inner.const
    return Sym(terms, const)


def linearize(index: tuple[Sym, ...], shape: tuple[int, ...]) -> Sym:
    """Row-major flat offset of `index` in a contiguous array of `shape`."""
    flat = Sym({})
    stride = 1
    for i, n in zip(reversed(index), reversed(shape)):
        if n != 1:
            flat = flat + i * stride
        stride *= n
    return flat


def delinearize(flat: Sym, shape: tuple[int, ...]) -> tuple[Sym, ...]:
    """The row-major index in `shape` of a flat offset."""
    out = []
    stride = math.prod(shape)
    for n in shape:
        stride //= n if n else 1
        out.append(Sym({}) if n == 1 else flat.floordiv(stride).mod(n) if stride else Sym({}))
    return tuple(out)
