"""nn.Parameter: a leaf tensor that a Module registers as one of its parameters."""

from __future__ import annotations

import weakref

from ..tensor import Tensor

_STATE = tuple(s for s in Tensor.__slots__ if s != "__weakref__")


class Parameter(Tensor):
    """A tensor that requires grad (by default) and that Modules collect in parameters().

    Like PyTorch's, it shares its value with the tensor it was made from; results of
    ops on it are plain Tensors.
    """

    __slots__ = ()

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True) -> Parameter:
        if data is None:
            from ..creation import empty

            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter data must be a Tensor, got {type(data).__name__}")
        src = data.detach()
        p = object.__new__(cls)
        for name in _STATE:
            setattr(p, name, getattr(src, name))
        # The parameter holds the value now: a pending value is stored when first computed.
        node = p._storage.node
        if node.owner is None or node.owner() is None:
            node.owner = weakref.ref(p)
        p.requires_grad_(requires_grad)
        return p

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __deepcopy__(self, memo) -> Parameter:
        copy = memo.get(id(self))
        if copy is None:
            copy = memo[id(self)] = Parameter(self.detach().clone(), self.requires_grad)
        return copy

    def __reduce_ex__(self, protocol):
        raise TypeError("llgrad parameters are not picklable; use llgrad.save / numpy()")
