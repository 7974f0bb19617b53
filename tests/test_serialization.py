"""llgrad.save / llgrad.load: round trips through .npz, and files that must not run code."""

from __future__ import annotations

import io
import json
import zipfile

import llgrad
import llgrad.nn as nn
import numpy as np
import pytest


def test_tensor_round_trip(tmp_path):
    path = tmp_path / "t.npz"
    for value in (llgrad.randn(3, 4), llgrad.tensor(2.5, dtype=llgrad.float64), llgrad.arange(5),
                  llgrad.tensor([True, False]), llgrad.zeros(0, 3), llgrad.ones(2, requires_grad=True)):
        llgrad.save(value, path)
        back = llgrad.load(path)
        assert back.dtype is value.dtype and back.shape == value.shape
        assert back.requires_grad == value.requires_grad
        assert np.array_equal(back.detach().numpy(), value.detach().numpy())


def test_nested_structures_round_trip(tmp_path):
    obj = {"epoch": 3, "lr": 1e-3, "inf": float("inf"), "name": "run", "flag": True, "none": None,
           "betas": (0.9, 0.999), "ids": [1, 2, 3], 7: {"t": llgrad.ones(2)}, "dtype": llgrad.float64}
    llgrad.save(obj, tmp_path / "obj.npz")
    back = llgrad.load(tmp_path / "obj.npz")
    assert back.keys() == obj.keys()
    for key in ("epoch", "lr", "inf", "name", "flag", "none", "betas", "ids", "dtype"):
        assert back[key] == obj[key] and type(back[key]) is type(obj[key]), key
    assert back[7]["t"].tolist() == [1.0, 1.0]


def test_model_state_dict_round_trip_and_numpy_view(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.LayerNorm(3))
    path = tmp_path / "model"  # no suffix: written exactly there
    llgrad.save(model.state_dict(), path)
    other = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.LayerNorm(3))
    other.load_state_dict(llgrad.load(path))
    x = llgrad.randn(5, 4)
    assert np.array_equal(model(x).detach().numpy(), other(x).detach().numpy())
    with np.load(path, allow_pickle=False) as plain:  # a checkpoint is an ordinary .npz
        assert {"0.weight", "0.bias", "2.weight", "2.bias"} <= set(plain.files)
        assert np.array_equal(plain["0.weight"], model[0].weight.detach().numpy())


def test_save_refuses_objects_it_cannot_store_as_data(tmp_path):
    with pytest.raises(TypeError, match="cannot store a object"):
        llgrad.save({"x": object()}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="keys must be str or int"):
        llgrad.save({(1, 2): llgrad.ones(1)}, tmp_path / "x.npz")


class _Exploit:
    """Unpickling this would create a file: the sign that loading ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _archive(path, members: dict) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def test_a_pickled_payload_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    payload = np.array([_Exploit(marker)], dtype=object)
    meta = np.array(json.dumps({"format": 1, "root": {"dict": [["w", {"tensor": "w"}]]}}))
    path = tmp_path / "evil.npz"
    _archive(path, {"w.npy": _npy(payload), "__llgrad__.npy": _npy(meta)})
    with pytest.raises(ValueError):
        llgrad.load(path)
    assert not marker.exists()
    # The structure entry itself as a pickled object array: refused as well.
    _archive(path, {"__llgrad__.npy": _npy(np.array([_Exploit(marker)], dtype=object))})
    with pytest.raises(ValueError):
        llgrad.load(path)
    assert not marker.exists()
    # A bare pickle (what torch.save writes) is not an npz at all.
    import pickle

    path.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(ValueError, match="not an llgrad"):
        llgrad.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("root", [
    {"tensor": "missing"},
    {"tensor": "__llgrad__"},
    {"eval": "__import__('os')"},
    {"dict": [["k"]]},
    {"value": {"nested": "object"}},
    {"dtype": "object"},
    "just a string",
])
def test_malformed_structure_entries_are_errors(tmp_path, root):
    path = tmp_path / "bad.npz"
    _archive(path, {"__llgrad__.npy": _npy(np.array(json.dumps({"format": 1, "root": root})))})
    with pytest.raises(ValueError):
        llgrad.load(path)


def test_plain_npz_and_foreign_files_are_errors(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.ones(2))
    with pytest.raises(ValueError, match="no structure entry"):
        llgrad.load(tmp_path / "plain.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError):
        llgrad.load(tmp_path / "text.npz")
