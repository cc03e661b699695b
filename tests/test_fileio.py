"""The one atomic writer behind every produced file."""

from __future__ import annotations

import os
import stat

import pytest

from mixformerv2.fileio import atomic_target, atomic_write_text
from mixformerv2.tracking.video import write_boxes


def test_files_get_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_boxes(tmp_path / "b.txt", [(1, 2, 3, 4)])
        atomic_write_text(tmp_path / "t.txt", "x\n")
        from mixformerv2 import ModelConfig, build_model, save_checkpoint

        model = build_model(ModelConfig(embed_dim=32, depth=1, num_heads=2, template_size=32, search_size=64, feat_sz=16))
        save_checkpoint(model, tmp_path / "m.safetensors")  # safetensors recreates its file with 0600
    finally:
        os.umask(old)
    for name in ("b.txt", "t.txt", "m.safetensors"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


def test_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_target(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n" and len(list(tmp_path.iterdir())) == 1
