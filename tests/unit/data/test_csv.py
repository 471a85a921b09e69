"""text/csv parsing: values, chunking, line numbers, and every bad input named by file and line."""
from __future__ import annotations

import numpy as np
import pytest

from smlocal.data.csv import CsvBlock, CsvScanner, DataFormatError, MissingValueError, first_nonfinite, read_csv


def parse(data: bytes, chunk: int | None = None, source: str = "train.csv") -> list[CsvBlock]:
    scanner = CsvScanner(source)
    chunk = chunk or max(len(data), 1)
    blocks = []
    for i in range(0, len(data), chunk):
        blocks += scanner.feed(data[i : i + chunk])
    return blocks + scanner.finish()


def values_of(blocks: list[CsvBlock]) -> np.ndarray:
    return np.concatenate([b.values for b in blocks])


def test_label_first_column_and_unsupervised(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"1,0.5,2\n0,1.5,-3e2\n")
    x, y = read_csv(path, label_size=1)
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert x.tolist() == [[0.5, 2.0], [1.5, -300.0]] and y.tolist() == [1.0, 0.0]
    x, y = read_csv(path, label_size=0)
    assert y is None and x.shape == (2, 3)


def test_values_round_like_float():
    cells = ["0.1", "3.4028235e38", "1e-45", "-2.5", "16777217", " 7 "]
    block = parse(",".join(cells).encode() + b"\n")[0]
    assert block.values.tolist()[0] == [float(np.float32(float(c))) for c in cells]


@pytest.mark.parametrize("chunk", [1, 2, 5, 17, 64])
def test_chunk_boundaries_do_not_change_rows(chunk):
    rng = np.random.default_rng(chunk)
    rows = rng.standard_normal((40, 4)).astype(np.float32)
    data = "".join(",".join(repr(float(v)) for v in r) + "\n" for r in rows).encode()
    blocks = parse(data, chunk)
    np.testing.assert_array_equal(values_of(blocks), rows)
    assert np.concatenate([b.lines for b in blocks]).tolist() == list(range(1, 41))


def test_missing_final_newline_crlf_and_blank_lines():
    blocks = parse(b"1,2\r\n\r\n3,4\n\n5,6", chunk=4)
    assert values_of(blocks).tolist() == [[1, 2], [3, 4], [5, 6]]
    assert np.concatenate([b.lines for b in blocks]).tolist() == [1, 3, 5]


def test_header_row_is_named():
    with pytest.raises(DataFormatError) as info:
        parse(b"label,f1,f2\n1,2,3\n")
    msg = str(info.value)
    assert "'train.csv' line 1" in msg and "header" in msg and "remove the first line" in msg
    assert info.value.exit_code == 2


def test_non_numeric_cell_names_line_and_column():
    with pytest.raises(DataFormatError, match=r"'train.csv' line 3, column 2: the non-numeric cell 'abc'"):
        parse(b"1,2,3\n4,5,6\n7,abc,9\n")


def test_non_numeric_cell_in_a_later_chunk_keeps_line_numbers():
    data = b"1,2\n" * 50 + b"3,x\n"
    with pytest.raises(DataFormatError, match="line 51, column 2"):
        parse(data, chunk=16)


def test_ragged_row_names_line():
    with pytest.raises(DataFormatError, match=r"line 3 has 2 columns but the rows before it have 3"):
        parse(b"1,2,3\n4,5,6\n7,8\n")


def test_ragged_row_across_chunks():
    with pytest.raises(DataFormatError, match=r"line 21 has 4 columns but the rows before it have 3"):
        parse(b"1,2,3\n" * 20 + b"1,2,3,4\n", chunk=12)


def test_ragged_across_files_uses_the_channel_width():
    scanner = CsvScanner("second.csv", expect_columns=3)
    with pytest.raises(DataFormatError, match=r"'second.csv' line 1 has 2 columns"):
        scanner.feed(b"1,2\n")


def test_empty_cell_is_a_missing_value():
    with pytest.raises(MissingValueError) as info:
        parse(b"1,2,3\n4,,6\n")
    assert (info.value.source, info.value.line, info.value.column) == ("train.csv", 2, 2)


def test_nan_cells_parse_and_are_located():
    blocks = parse(b"1,2\n\n3,nan\n")
    row, column = first_nonfinite(blocks[0].values)
    assert (row, column) == (1, 1) and blocks[0].lines[row] == 3


def test_infinite_cells_parse_and_are_located():
    values = parse(b"1,2\n3,4\n1e39,5\n")[0].values  # 1e39 is beyond float32's range
    assert first_nonfinite(values) == (2, 0) and np.isinf(values[2, 0])
    assert first_nonfinite(parse(b"1,2\n3,4\n")[0].values) is None


def test_read_csv_names_the_nan_line(tmp_path):
    path = tmp_path / "n.csv"
    path.write_bytes(b"1,2\n3,4\n5,NaN\n")
    with pytest.raises(DataFormatError, match=r"line 3: Found missing \(NaN\) values"):
        read_csv(path)


def test_label_only_file_is_rejected(tmp_path):
    path = tmp_path / "one.csv"
    path.write_bytes(b"1\n2\n")
    with pytest.raises(DataFormatError, match="no feature column is left"):
        read_csv(path, label_size=1)
    assert read_csv(path, label_size=0)[0].shape == (2, 1)


def test_binary_data_is_not_csv():
    # RecordIO starts with 0x0A, a newline: the first non-blank line is line 2
    with pytest.raises(DataFormatError, match="line 2, column 1: the non-numeric cell"):
        parse(b"\x0a\x23\xd7\xce\x10\x00\x00\x00\x00\x01\x02\x03\n")
