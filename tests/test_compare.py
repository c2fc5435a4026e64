"""The run comparison behind `make determinism` finds every kind of difference and refuses to
pass when it compares nothing."""
from __future__ import annotations

from alps.compare import compare_trees, first_difference, main


def _tree(root, files):
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return root


def test_identical_runs_pass(tmp_path, capsys):
    files = {"results/tables/a.csv": "x,y\n1,2\n", "results/tables/b.tsv": "p\tq\n"}
    a, b = _tree(tmp_path / "a", files), _tree(tmp_path / "b", files)
    assert main([str(a), str(b), "--pattern", "results/tables/*"]) == 0
    assert "2 of 2 files identical" in capsys.readouterr().out


def test_differences_and_missing_files_fail(tmp_path, capsys):
    a = _tree(tmp_path / "a", {"t/a.csv": "x\n1\n2\n", "t/only_a.csv": "z\n", "t/same.csv": "s\n"})
    b = _tree(tmp_path / "b", {"t/a.csv": "x\n1\n3\n", "t/only_b.csv": "z\n", "t/same.csv": "s\n"})
    res = compare_trees(a, b, ["t/*"]).set_index("file")
    assert res.loc["t/a.csv", "status"] == "different"
    assert res.loc["t/a.csv", "detail"] == "line 3: '2' | '3'"
    assert res.loc["t/only_a.csv", "status"] == "missing_in_b"
    assert res.loc["t/only_b.csv", "status"] == "missing_in_a"
    assert res.loc["t/same.csv", "status"] == "identical"
    assert main([str(a), str(b), "--pattern", "t/*"]) == 1
    assert "1 of 4 files identical" in capsys.readouterr().out


def test_nothing_to_compare_is_an_error(tmp_path):
    a, b = _tree(tmp_path / "a", {"x.txt": "1"}), _tree(tmp_path / "b", {"x.txt": "1"})
    assert main([str(a), str(b), "--pattern", "tables/*"]) == 2
    assert main([str(a), str(tmp_path / "nope"), "--pattern", "*"]) == 2


def test_first_difference_texts_and_bytes():
    assert first_difference(b"a\nb\n", b"a\n") == "line 2: one file ends (2 vs 1 lines)"
    assert first_difference(b"\xff\x00\x01", b"\xff\x00\x02").startswith("byte 2")
