import zipfile

import pytest

from l2i.downloads import extract, install_from_archive


def make_zip(path, members):
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def find_data(staging):
    return next(staging.glob("*/data"), None)


def test_install_keeps_only_the_wanted_folder_and_replaces_the_old_one(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"release-1/data/x.txt": "new", "release-1/README": "skip"})
    target = tmp_path / "cache" / "data"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("old")
    assert install_from_archive(archive, target, find_data, what="a data folder") == target
    assert sorted(p.name for p in target.iterdir()) == ["x.txt"]
    assert (target / "x.txt").read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["data"]  # no staging left


def test_install_failure_leaves_the_target_as_it_was(tmp_path):
    target = tmp_path / "cache" / "data"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("old")
    wrong = make_zip(tmp_path / "wrong.zip", {"release-1/other/x.txt": "?"})
    with pytest.raises(ValueError, match="does not hold a data folder"):
        install_from_archive(wrong, target, find_data, what="a data folder")

    def refuse(folder):
        raise ValueError(f"{folder} is incomplete")

    good = make_zip(tmp_path / "good.zip", {"release-1/data/x.txt": "new"})
    with pytest.raises(ValueError, match="incomplete"):
        install_from_archive(good, target, find_data, what="a data folder", check=refuse)
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["data"]


def test_extract_refuses_an_unreadable_archive_and_writes_nothing(tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(ValueError, match="not a readable archive"):
        extract(junk, tmp_path / "out" / "x")
    assert list((tmp_path / "out").iterdir()) == []
