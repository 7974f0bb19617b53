"""conv2d, max_pool2d and constant padding, composed from view ops, stack, mm and max.

Padding is `embed` (a source placed into a larger zero tensor: index
arithmetic with a window test, no copy). A 2-d window position (i, j) is a
strided slice of the padded input; conv2d stacks the kh*kw slices into the
im2col matrix (the one value it writes) and multiplies it by the weights in
one mm; max_pool2d stacks them on a last dim and takes max over it, whose
gradient goes to one index per window (the first maximum in row-major window
order, as PyTorch's CPU kernel picks).
"""

from __future__ import annotations

import math

from llgrad.compiler import dtypes

from .. import functional as F
from ..dispatch import apply
from ..tensor import Tensor


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _embed(x: Tensor, dim: int, before: int, after: int) -> Tensor:
    return apply("embed", x, dim=dim, start=before, step=1, size=x.shape[dim] + before + after)


def pad_dims(x: Tensor, pads: dict, value: float = 0.0) -> Tensor:
    """x with pads[dim] = (before, after) elements of `value` added along each dim (negative: cropped)."""
    for dim, (before, after) in pads.items():
        if before < 0 or after < 0:
            n = x.shape[dim]
            x = apply("slice", x, dim=dim, start=max(-before, 0), stop=n - max(-after, 0), step=1)
            before, after = max(before, 0), max(after, 0)
    grow = {d: p for d, p in pads.items() if max(p[0], 0) or max(p[1], 0)}
    if not grow:
        return x
    inside = None
    if value != 0:
        inside = apply("expand", apply("cast", True, dtype=dtypes.bool_), shape=tuple(x.shape))
    for dim, (before, after) in grow.items():
        before, after = max(before, 0), max(after, 0)
        x = _embed(x, dim, before, after)
        if inside is not None:
            inside = _embed(inside, dim, before, after)
    return x if inside is None else F.where(inside, x, value)


def pad(input: Tensor, pad: tuple, mode: str = "constant", value: float | None = None) -> Tensor:
    """F.pad: `pad` lists (before, after) pairs from the last dim backwards."""
    if mode != "constant":
        raise NotImplementedError(f"F.pad(mode={mode!r}) is not supported; only 'constant'")
    if len(pad) % 2 or len(pad) // 2 > input.dim():
        raise RuntimeError(f"Padding length must be divisible by 2 and at most twice the number of "
                           f"dimensions of the input, got {len(pad)} for a {input.dim()}-d input")
    n = input.dim()
    pads = {n - 1 - k: (int(pad[2 * k]), int(pad[2 * k + 1])) for k in range(len(pad) // 2)}
    return pad_dims(input, pads, 0.0 if value is None else value)


def _out_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
              ceil_mode: bool = False) -> int:
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + padding:  # the last window must start inside the input or left padding
        out -= 1
    return out


def _windows(x: Tensor, hw_dims: tuple, kernel: tuple, stride: tuple, dilation: tuple, out: tuple) -> list:
    """The kh*kw strided views of x, one per window position, in row-major window order."""
    dh, dw = hw_dims
    views = []
    for i in range(kernel[0]):
        top = i * dilation[0]
        rows = apply("slice", x, dim=dh, start=top, stop=top + (out[0] - 1) * stride[0] + 1, step=stride[0])
        for j in range(kernel[1]):
            start = j * dilation[1]
            views.append(apply("slice", rows, dim=dw, start=start, stop=start + (out[1] - 1) * stride[1] + 1,
                               step=stride[1]))
    return views


def _batched(input: Tensor, name: str) -> tuple[Tensor, bool]:
    if input.dim() == 3:
        return F.unsqueeze(input, 0), True
    if input.dim() != 4:
        raise RuntimeError(f"Expected 3D (unbatched) or 4D (batched) input to {name}, but got input of size: "
                           f"{list(input.shape)}")
    return input, False


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    if groups != 1:
        raise NotImplementedError("conv2d(groups != 1) is not supported")
    x, unbatched = _batched(input, "conv2d")
    n, c, h, w = x.shape
    o, cw, kh, kw = weight.shape
    if cw != c:
        raise RuntimeError(f"Given groups=1, weight of size {list(weight.shape)}, expected input"
                           f"{list(input.shape)} to have {cw} channels, but got {c} channels instead")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if isinstance(padding, str):
        padding = _string_padding(padding, (kh, kw), stride, dilation)
    else:
        padding = _pair(padding, "padding")
        padding = ((padding[0], padding[0]), (padding[1], padding[1]))
    hp, wp = h + sum(padding[0]), w + sum(padding[1])
    ho = (hp - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wp - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if ho <= 0 or wo <= 0:
        raise RuntimeError(f"Calculated output size: ({o}x{max(ho, 0)}x{max(wo, 0)}). Output size is too "
                           f"small (input {list(input.shape)}, kernel {kh}x{kw})")
    # Channels first: the im2col matrix is (C*kh*kw, N*Ho*Wo) and one mm computes every output.
    xc = pad_dims(F.permute(x, 1, 0, 2, 3), {2: padding[0], 3: padding[1]})
    cols = F.stack(_windows(xc, (2, 3), (kh, kw), stride, dilation, (ho, wo)), dim=1)
    out = F.mm(F.reshape(weight, (o, c * kh * kw)), F.reshape(cols, (c * kh * kw, n * ho * wo)))
    out = F.permute(F.reshape(out, (o, n, ho, wo)), 1, 0, 2, 3)
    if bias is not None:
        out = F.add(out, F.reshape(bias, (1, o, 1, 1)))
    return F.squeeze(out, 0) if unbatched else out


def _string_padding(mode: str, kernel: tuple, stride: tuple, dilation: tuple) -> tuple:
    if mode == "valid":
        return (0, 0), (0, 0)
    if mode != "same":
        raise ValueError(f"Invalid padding string {mode!r}, should be one of ('valid', 'same')")
    if stride != (1, 1):
        raise ValueError("padding='same' is not supported for strided convolutions")
    total = [d * (k - 1) for d, k in zip(dilation, kernel)]
    return tuple((t // 2, t - t // 2) for t in total)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor:
    if return_indices:
        raise NotImplementedError("max_pool2d(return_indices=True) is not supported")
    x, unbatched = _batched(input, "max_pool2d")
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None or stride == [] else _pair(stride, "stride")
    padding, dilation = _pair(padding, "padding"), _pair(dilation, "dilation")
    for p, k in zip(padding, kernel):
        if p > k // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got pad={p}, "
                               f"kernel_size={k} and dilation={dilation[0]}")
    h, w = x.shape[2:]
    out = tuple(_out_size(s, k, st, p, d, ceil_mode)
                for s, k, st, p, d in zip((h, w), kernel, stride, padding, dilation))
    if min(out) <= 0:
        raise RuntimeError(f"Given input size: ({x.shape[1]}x{h}x{w}). Calculated output size: "
                           f"({x.shape[1]}x{out[0]}x{out[1]}). Output size is too small")
    # Windows reaching past the input (padding, ceil_mode) see -inf there, so they never win.
    pads = {}
    for dim, size, k, st, p, d, o in zip((2, 3), (h, w), kernel, stride, padding, dilation, out):
        after = max((o - 1) * st + d * (k - 1) + 1 - size - p, 0)
        pads[dim] = (p, after)
    if any(a or b for a, b in pads.values()):
        x = pad_dims(x, pads, -math.inf)
    windows = _windows(x, (2, 3), kernel, stride, dilation, out)
    result = F.max(F.stack(windows, dim=-1), dim=-1).values
    return F.squeeze(result, 0) if unbatched else result


__all__ = ["conv2d", "max_pool2d", "pad"]
