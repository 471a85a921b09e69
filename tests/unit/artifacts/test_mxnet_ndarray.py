"""The NDArray-list codec without MXNet: round trips, dtypes, old headers, and refusals."""
from __future__ import annotations

import io
import os
import struct

import numpy as np
import pytest

from smlocal.artifacts.files import atomic_write_bytes
from smlocal.artifacts.mxnet_ndarray import (
    NDARRAY_V1_MAGIC, NDArrayFormatError, dumps_ndarrays, load_ndarrays, save_ndarrays,
)

RNG = np.random.default_rng(7)


def test_list_round_trip_keeps_order_shape_and_values():
    arrays = [RNG.normal(size=(4, 3)).astype(np.float32), RNG.normal(size=(5,)).astype(np.float32)]
    back = load_ndarrays(dumps_ndarrays(arrays))
    assert isinstance(back, list) and len(back) == 2
    for a, b in zip(arrays, back):
        assert b.dtype == np.float32 and b.shape == a.shape
        np.testing.assert_array_equal(a, b)


def test_dict_round_trip_keeps_names_in_stored_order():
    arrays = {"1": np.ones((3, 1), np.float32), "0": RNG.normal(size=(3, 2)).astype(np.float32)}
    back = load_ndarrays(dumps_ndarrays(arrays))
    assert list(back) == ["1", "0"]
    np.testing.assert_array_equal(back["0"], arrays["0"])


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "uint8", "int32", "int8", "int64", "bool"])
def test_every_numpy_backed_dtype_round_trips(dtype):
    a = (RNG.normal(size=(2, 3)) * 10).astype(dtype)
    back = load_ndarrays(dumps_ndarrays([a]))[0]
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, a)


def test_big_endian_input_is_written_little_endian():
    a = np.arange(6, dtype=">f4").reshape(2, 3)
    assert dumps_ndarrays([a]) == dumps_ndarrays([a.astype("<f4")])


def test_layout_matches_spec_header():
    data = dumps_ndarrays([np.zeros((2, 3), np.float32)])
    magic, reserved, count = struct.unpack_from("<QQQ", data, 0)
    assert (magic, reserved, count) == (0x112, 0, 1)
    arr_magic, stype, ndim, d0, d1, dev_type, dev_id, flag = struct.unpack_from("<IiIqqiii", data, 24)
    assert (arr_magic, stype, ndim, d0, d1, dev_type, dev_id, flag) == (0xF993FAC9, 0, 2, 2, 3, 1, 0, 0)
    assert len(data) == 24 + 4 + 4 + 4 + 16 + 12 + 24 + 8


def test_reads_v1_and_legacy_headers():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    v1 = struct.pack("<Ii", NDARRAY_V1_MAGIC, 2) + struct.pack("<2q", 2, 3) + struct.pack("<iii", 1, 0, 0)
    legacy = struct.pack("<I", 2) + struct.pack("<2I", 2, 3) + struct.pack("<iii", 1, 0, 0)
    for header in (v1, legacy):
        data = struct.pack("<QQQ", 0x112, 0, 1) + header + a.tobytes() + struct.pack("<Q", 0)
        np.testing.assert_array_equal(load_ndarrays(data)[0], a)


def test_empty_list():
    assert load_ndarrays(dumps_ndarrays([])) == []


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d[:-5], "truncated"),
    (lambda d: b"\x00" * 8 + d[8:], "not an MXNet NDArray file"),
    (lambda d: d + b"xx", "unexpected bytes"),
    (lambda d: d[:28] + struct.pack("<i", 2) + d[32:], "sparse"),
    (lambda d: d[:60] + struct.pack("<i", 12) + d[64:], "dtype flag 12"),
    (lambda d: b"", "truncated"),
])
def test_corrupt_files_raise_format_errors(mutate, message):
    good = dumps_ndarrays([np.ones((2, 2), np.float32)])
    with pytest.raises(NDArrayFormatError, match=message):
        load_ndarrays(mutate(good))


def test_rejects_scalars_and_object_arrays():
    with pytest.raises(ValueError, match="0-d"):
        dumps_ndarrays([np.float32(1.0)])
    with pytest.raises(ValueError, match="cannot be stored"):
        dumps_ndarrays([np.array(["a"])])


def test_save_to_path_and_stream_and_load_from_stream(tmp_path):
    a = [np.arange(4, dtype=np.float32).reshape(2, 2)]
    save_ndarrays(tmp_path / "m", a)
    buf = io.BytesIO()
    save_ndarrays(buf, a)
    assert (tmp_path / "m").read_bytes() == buf.getvalue() == dumps_ndarrays(a)
    np.testing.assert_array_equal(load_ndarrays(io.BytesIO(buf.getvalue()))[0], a[0])
    np.testing.assert_array_equal(load_ndarrays(str(tmp_path / "m"))[0], a[0])


def test_atomic_write_leaves_no_temp_files_and_replaces(tmp_path):
    target = tmp_path / "sub" / "model_algo-1"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(os.listdir(target.parent)) == ["model_algo-1"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "model_algo-1"
    atomic_write_bytes(target, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model_algo-1"]


def test_fixture_files_decode_to_documented_shapes(fixtures_dir):
    expected = {"kmeans-ufo-labs": (10, 2), "kmeans-popseg-ahmed-gaal": (7, 8),
                "kmeans-popseg-zomma2": (8, 7), "kmeans-census-iris9112": (7, 5)}
    for folder, shape in expected.items():
        raw = (fixtures_dir / folder / "model_algo-1").read_bytes()
        arrays = load_ndarrays(raw)
        assert isinstance(arrays, list) and [a.shape for a in arrays] == [shape]
        assert dumps_ndarrays(arrays) == raw  # byte-identical re-encoding
        for state in (fixtures_dir / folder).glob("state_*"):
            st = load_ndarrays(state.read_bytes())
            assert list(st) == ["1", "0"] and st["0"].shape == (shape[0] * 10, shape[1])
            assert st["1"].shape == (shape[0] * 10, 1)
            assert dumps_ndarrays(st) == state.read_bytes()
