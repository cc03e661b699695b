"""Dataset readers (data/formats/*) on tiny trees built in each real on-disk layout."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from mixformerv2.data.formats import (
    COCO,
    DATASETS,
    OTB,
    TNL2K,
    UAV123,
    VOT,
    GOT10k,
    FolderDataset,
    LaSOT,
    NfS,
    TrackingNet,
    open_dataset,
)
from mixformerv2.data.formats.lasot import LASOT_TEST
from mixformerv2.data.formats.otb import OTB_SEQUENCES
from mixformerv2.data.formats.uav import UAV123_SEQUENCES
from mixformerv2.data.sequence import Sequence, SequenceDataset, pad_first_box, read_flags, valid_boxes
from mixformerv2.errors import InputError

BLUE_BGR = (255, 0, 0)


def _jpg(path: Path, color=(0, 128, 0)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((24, 32, 3), color, np.uint8))


def _boxes(n: int, start: float = 1.0) -> list[list[float]]:
    return [[start + i, 2.0 + i, 10.0, 8.0] for i in range(n)]


def _write_boxes(path: Path, boxes, sep: str = ",") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(sep.join(f"{v:g}" for v in b) + "\n" for b in boxes))


def _check_frames(seq: Sequence) -> None:
    assert all(p.is_file() for p in seq.frames), seq.frames
    assert len(seq.frames) == len(seq.boxes) == len(seq.visible)


def _is_blue(rgb: np.ndarray) -> bool:
    r, g, b = rgb[12, 16].astype(int)
    return b > 200 and r < 60 and g < 60


# -- LaSOT -----------------------------------------------------------------------------------------
def _lasot_seq(root: Path, name: str, n: int = 4, occ=None, oov=None, boxes=None, frames: bool = True) -> Path:
    cls = name.rsplit("-", 1)[0]
    folder = root / cls / name
    (folder / "img").mkdir(parents=True, exist_ok=True)
    if frames:
        for i in range(1, n + 1):
            _jpg(folder / "img" / f"{i:08d}.jpg")
    _write_boxes(folder / "groundtruth.txt", boxes if boxes is not None else _boxes(n))
    (folder / "full_occlusion.txt").write_text(",".join(str(v) for v in (occ or [0] * n)) + "\n")
    (folder / "out_of_view.txt").write_text(",".join(str(v) for v in (oov or [0] * n)) + "\n")
    return folder


@pytest.fixture
def lasot_root(tmp_path):
    root = tmp_path / "lasot"
    boxes = _boxes(4)
    boxes[3] = [5, 5, 0, 7]  # zero-width box
    _lasot_seq(root, "airplane-1", occ=[0, 1, 0, 0], oov=[0, 0, 1, 0], boxes=boxes)
    _lasot_seq(root, "airplane-10", n=3)
    _lasot_seq(root, "airplane-2", n=3)
    _lasot_seq(root, "bird-3", n=5)
    return root


def test_lasot_reads_sequences_lazily_in_natural_order(lasot_root):
    ds = LaSOT(lasot_root)
    assert isinstance(ds, SequenceDataset)
    assert ds.is_video and ds.name == "lasot" and len(ds) == 4
    assert ds.sequence_names == ["airplane-1", "airplane-2", "airplane-10", "bird-3"]
    assert "LaSOT" in repr(ds) and "4 sequences" in repr(ds)
    seq = ds[0]
    _check_frames(seq)
    assert [p.name for p in seq.frames] == [f"{i:08d}.jpg" for i in range(1, 5)]
    assert seq.frames[0].parent == lasot_root / "airplane" / "airplane-1" / "img"
    np.testing.assert_allclose(seq.boxes[:3], _boxes(4)[:3])
    assert seq.visible.tolist() == [True, False, False, False]  # occluded, out of view, zero width
    assert seq.object_class == "airplane" and seq.dataset == "lasot" and not seq.is_image
    assert ds[-1].name == "bird-3" and len(ds[-1]) == 5 and ds[-1].visible.all()
    assert ds["airplane-10"].name == "airplane-10"
    assert [s.name for s in ds] == ds.sequence_names
    with pytest.raises(IndexError):
        ds[4]


def test_lasot_split_file_and_classes(lasot_root, tmp_path):
    split = tmp_path / "lasot_train_split.txt"
    split.write_text("bird-3\nairplane-2\n\n")
    ds = LaSOT(lasot_root, split=split)
    assert ds.sequence_names == ["bird-3", "airplane-2"]
    assert LaSOT(lasot_root, split=str(split), classes=["airplane"]).sequence_names == ["airplane-2"]
    assert LaSOT(lasot_root, classes="bird").sequence_names == ["bird-3"]
    (lasot_root / "testing_set.txt").write_text("airplane-1\nairplane-10\n")
    assert LaSOT(lasot_root, split="test").sequence_names == ["airplane-1", "airplane-10"]


def test_lasot_bad_inputs(lasot_root, tmp_path):
    with pytest.raises(InputError, match="root not found"):
        LaSOT(tmp_path / "nope")
    with pytest.raises(InputError, match="training_set.txt"):
        LaSOT(lasot_root, split="train")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(InputError, match="empty split"):
        LaSOT(lasot_root, split=empty)
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("airplane-1\ncat-7\ndog-2\n")
    with pytest.raises(InputError, match="cat-7, dog-2"):
        LaSOT(lasot_root, split=unknown)
    with pytest.raises(InputError, match="not found"):
        LaSOT(lasot_root, split=tmp_path / "missing_split.txt")
    with pytest.raises(InputError, match="zebra"):
        LaSOT(lasot_root, classes=["zebra"])
    gt = lasot_root / "airplane" / "airplane-2" / "groundtruth.txt"
    gt.write_text("1,2,3,4\n1,2,x,4\n")
    ds = LaSOT(lasot_root)
    with pytest.raises(InputError, match=r"groundtruth\.txt:2"):
        ds["airplane-2"]
    (lasot_root / "bird" / "bird-3" / "full_occlusion.txt").write_text("0,0\n")
    with pytest.raises(InputError, match="full_occlusion.txt"):
        ds["bird-3"]


def test_lasot_indexes_1400_sequences_fast(tmp_path):
    root = tmp_path / "big"
    for c in range(70):
        for k in range(1, 21):
            (root / f"class{c}" / f"class{c}-{k}").mkdir(parents=True)
    start = time.perf_counter()
    ds = LaSOT(root)
    elapsed = time.perf_counter() - start
    assert len(ds) == 1400
    assert elapsed < 0.5, elapsed


# -- GOT-10k ---------------------------------------------------------------------------------------
def _got_seq(split_dir: Path, name: str, n: int = 4, boxes=None, absence=None, cover=None, meta: str | None = None):
    folder = split_dir / name
    for i in range(1, n + 1):
        _jpg(folder / f"{i:08d}.jpg")
    _write_boxes(folder / "groundtruth.txt", boxes if boxes is not None else _boxes(n))
    if absence is not None:
        (folder / "absence.label").write_text("".join(f"{v}\n" for v in absence))
    if cover is not None:
        (folder / "cover.label").write_text("".join(f"{v}\n" for v in cover))
    if meta is not None:
        (folder / "meta_info.ini").write_text(meta)
    return folder


META = "[METAINFO]\nurl: https://youtu.be/x\nbegin: 00:00:01\nobject_class: fox\nmotion_class: running\n"


@pytest.fixture
def got_root(tmp_path):
    train = tmp_path / "got10k" / "train"
    boxes = _boxes(5)
    boxes[4] = [3, 3, 5, 0]  # zero height
    _got_seq(train, "GOT-10k_Train_000001", n=5, boxes=boxes, absence=[0, 1, 0, 0, 0], cover=[8, 8, 0, 3, 8], meta=META)
    _got_seq(train, "GOT-10k_Train_000002", n=3, absence=[0, 0, 0], cover=[1, 2, 3])
    _got_seq(train, "GOT-10k_Train_000003", n=3, absence=[0, 0, 0], cover=[5, 5, 5])
    (train / "list.txt").write_text("GOT-10k_Train_000001\nGOT-10k_Train_000002\nGOT-10k_Train_000003\n")
    return train


def test_got10k_train_visibility_cover_and_class(got_root):
    ds = GOT10k(got_root)
    assert isinstance(ds, SequenceDataset) and ds.is_video and ds.name == "got10k" and len(ds) == 3
    assert "GOT10k" in repr(ds)
    seq = ds[0]
    _check_frames(seq)
    assert [p.name for p in seq.frames] == [f"{i:08d}.jpg" for i in range(1, 6)]
    np.testing.assert_allclose(seq.boxes[:4], _boxes(5)[:4])
    assert seq.visible.tolist() == [True, False, False, True, False]  # absent, cover 0, zero height
    assert seq.extra["cover"].tolist() == [8, 8, 0, 3, 8]
    assert seq.object_class == "fox" and seq.extra["meta"]["motion_class"] == "running"
    assert ds[1].object_class is None and ds[1].visible.all()


def test_got10k_split_files_by_index_and_by_name(got_root, tmp_path):
    by_index = tmp_path / "got10k_vot_train_split.txt"
    by_index.write_text("2\n0\n")
    assert GOT10k(got_root, split_file=by_index).sequence_names == ["GOT-10k_Train_000003", "GOT-10k_Train_000001"]
    by_name = tmp_path / "names.txt"
    by_name.write_text("GOT-10k_Train_000002\n")
    ds = GOT10k(got_root, split_file=by_name)
    assert ds.sequence_names == ["GOT-10k_Train_000002"] and len(ds[0]) == 3


def test_got10k_test_split_first_box_only_and_no_list(tmp_path):
    test = tmp_path / "test"
    _got_seq(test, "GOT-10k_Test_000002", n=4, boxes=[[4, 5, 6, 7]])
    _got_seq(test, "GOT-10k_Test_000010", n=3, boxes=[[1, 1, 2, 2]])
    ds = GOT10k(test)  # no list.txt: sorted folders holding groundtruth.txt
    assert ds.sequence_names == ["GOT-10k_Test_000002", "GOT-10k_Test_000010"]
    seq = ds[0]
    _check_frames(seq)
    assert seq.boxes.shape == (4, 4)
    np.testing.assert_allclose(seq.boxes[0], [4, 5, 6, 7])
    assert np.isnan(seq.boxes[1:]).all()
    assert seq.visible.tolist() == [True, False, False, False]
    assert "cover" not in seq.extra


def test_got10k_bad_inputs(got_root, tmp_path):
    with pytest.raises(InputError, match="root not found"):
        GOT10k(tmp_path / "missing")
    with pytest.raises(InputError, match="not a GOT-10k split folder.*train/"):
        GOT10k(got_root.parent)  # the top folder, not a split folder
    lasot = tmp_path / "lasot"
    _lasot_seq(lasot, "cat-1", n=2, frames=False)
    with pytest.raises(InputError, match="not a GOT-10k split folder"):
        GOT10k(lasot)
    bad_index = tmp_path / "bad_index.txt"
    bad_index.write_text("0\n7\n")
    with pytest.raises(InputError, match="7"):
        GOT10k(got_root, split_file=bad_index)
    bad_names = tmp_path / "bad_names.txt"
    bad_names.write_text("GOT-10k_Train_000001\nGOT-10k_Train_999999\n")
    with pytest.raises(InputError, match="GOT-10k_Train_999999"):
        GOT10k(got_root, split_file=bad_names)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(InputError, match="empty split"):
        GOT10k(got_root, split_file=empty)
    (got_root / "GOT-10k_Train_000002" / "groundtruth.txt").write_text("1,2,3,4\n1,2,3\n1,2,3,4\n")
    with pytest.raises(InputError, match=r"GOT-10k_Train_000002.groundtruth\.txt:2"):
        GOT10k(got_root)[1]
    (got_root / "GOT-10k_Train_000003" / "groundtruth.txt").write_text("1,2,3,4\n1,2,3,4\n")
    with pytest.raises(InputError, match=r"groundtruth\.txt: 2 boxes for 3 frames"):
        GOT10k(got_root)[2]
    (got_root / "list.txt").write_text("GOT-10k_Train_000001\nGOT-10k_Train_000042\n")
    with pytest.raises(InputError, match="GOT-10k_Train_000042"):
        GOT10k(got_root)


# -- TrackingNet -----------------------------------------------------------------------------------
def _tn_video(root: Path, chunk: str, vid: str, n: int, boxes=None) -> None:
    for i in range(n):
        _jpg(root / chunk / "frames" / vid / f"{i}.jpg")
    _write_boxes(root / chunk / "anno" / f"{vid}.txt", boxes if boxes is not None else _boxes(n))


@pytest.fixture
def tn_root(tmp_path):
    root = tmp_path / "trackingnet"
    boxes = _boxes(12)
    boxes[5] = [0, 0, 0, 0]
    _tn_video(root, "TRAIN_0", "vidA", 12, boxes)
    _tn_video(root, "TRAIN_0", "vidB", 3)
    _tn_video(root, "TRAIN_2", "vidC", 4)
    _tn_video(root, "TEST", "vidT", 11, boxes=[[2, 3, 4, 5]])
    return root


def test_trackingnet_train_chunks(tn_root):
    ds = TrackingNet(tn_root)
    assert isinstance(ds, SequenceDataset) and ds.is_video and ds.name == "trackingnet"
    assert ds.chunks == ["TRAIN_0", "TRAIN_2"] and ds.sequence_names == ["vidA", "vidB", "vidC"]
    assert "TrackingNet" in repr(ds)
    seq = ds[0]
    _check_frames(seq)
    assert [p.name for p in seq.frames] == [f"{i}.jpg" for i in range(12)]  # 0-based, numeric order
    assert seq.visible.sum() == 11 and not seq.visible[5]
    assert TrackingNet(tn_root, chunks=[2]).sequence_names == ["vidC"]


def test_trackingnet_test_has_first_box_only(tn_root):
    ds = TrackingNet(tn_root, chunks="TEST")
    seq = ds[0]
    _check_frames(seq)
    assert len(seq) == 11 and [p.name for p in seq.frames][:3] == ["0.jpg", "1.jpg", "2.jpg"]
    assert seq.frames[-1].name == "10.jpg"
    np.testing.assert_allclose(seq.boxes[0], [2, 3, 4, 5])
    assert np.isnan(seq.boxes[1:]).all() and seq.visible.tolist() == [True] + [False] * 10


def test_trackingnet_bad_inputs(tn_root, tmp_path, got_root):
    with pytest.raises(InputError, match="root not found"):
        TrackingNet(tmp_path / "missing")
    with pytest.raises(InputError, match="TRAIN_5"):
        TrackingNet(tn_root, chunks=[0, 5])
    with pytest.raises(InputError, match="no TRAIN_<k> folders"):
        TrackingNet(got_root)
    (tn_root / "TRAIN_3" / "anno").mkdir(parents=True)
    with pytest.raises(InputError, match="TRAIN_3.anno: no annotation files"):
        TrackingNet(tn_root, chunks=[3])
    (tn_root / "TRAIN_2" / "anno" / "vidC.txt").write_text("1,2,3,4\n1;2;3;4\n")
    with pytest.raises(InputError, match=r"vidC\.txt:2"):
        TrackingNet(tn_root, chunks=[2])[0]


# -- COCO ------------------------------------------------------------------------------------------
@pytest.fixture
def coco_root(tmp_path):
    root = tmp_path / "coco"
    _jpg(root / "train2017" / "000000000009.jpg", BLUE_BGR)
    _jpg(root / "train2017" / "000000000025.jpg")
    data = {
        "images": [
            {"id": 9, "file_name": "000000000009.jpg", "width": 32, "height": 24},
            {"id": 25, "file_name": "000000000025.jpg", "width": 32, "height": 24},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}],
        "annotations": [
            {"id": 101, "image_id": 9, "category_id": 18, "bbox": [1, 2, 10, 8], "iscrowd": 0, "area": 80},
            {"id": 102, "image_id": 9, "category_id": 1, "bbox": [0, 0, 30, 20], "iscrowd": 1, "area": 600},
            {"id": 103, "image_id": 25, "category_id": 1, "bbox": [4.5, 3, 6, 5], "iscrowd": 0, "area": 30},
        ],
    }
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(data))
    return root


def test_coco_one_frame_sequences_without_crowd(coco_root):
    ds = COCO(coco_root)
    assert isinstance(ds, SequenceDataset) and not ds.is_video and ds.name == "coco"
    assert len(ds) == 2 and ds.sequence_names == ["9_101", "25_103"]
    assert "COCO" in repr(ds)
    seq = ds[0]
    _check_frames(seq)
    assert seq.is_image and len(seq) == 1 and seq.name == "9_101" and seq.object_class == "dog"
    np.testing.assert_allclose(seq.boxes, [[1, 2, 10, 8]])
    assert seq.visible.tolist() == [True]
    assert ds["25_103"].object_class == "person"
    np.testing.assert_allclose(ds[1].boxes, [[4.5, 3, 6, 5]])
    assert _is_blue(seq.read_frame(0))


def test_coco_bad_inputs(coco_root, tmp_path):
    with pytest.raises(InputError, match="instances_val2017.json"):
        COCO(coco_root, split="val")
    with pytest.raises(InputError, match="root not found"):
        COCO(tmp_path / "missing")
    path = coco_root / "annotations" / "instances_train2017.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="instances_train2017.json.*invalid JSON"):
        COCO(coco_root)
    path.write_text(json.dumps({"images": [], "categories": [], "annotations": []}))
    with pytest.raises(InputError, match="no non-crowd annotations"):
        COCO(coco_root)


# -- folder ----------------------------------------------------------------------------------------
def _folder_seq(folder: Path, n: int = 4, boxes=None, ext: str = ".jpg", sep: str = ",") -> Path:
    for i in range(1, n + 1):
        _jpg(folder / f"{i}{ext}", BLUE_BGR)
    _write_boxes(folder / "groundtruth.txt", boxes if boxes is not None else _boxes(n), sep=sep)
    return folder


def test_folder_single_sequence_natural_order_and_rgb(tmp_path):
    root = _folder_seq(tmp_path / "clip", n=11, sep="\t")
    (root / "notes.md").write_text("not an image")
    ds = FolderDataset(root)
    assert isinstance(ds, SequenceDataset) and ds.is_video and len(ds) == 1 and ds.sequence_names == ["clip"]
    assert "FolderDataset" in repr(ds)
    seq = ds[0]
    _check_frames(seq)
    assert [p.name for p in seq.frames] == [f"{i}.jpg" for i in range(1, 12)]
    np.testing.assert_allclose(seq.boxes, _boxes(11))
    assert seq.visible.all()
    frame = seq.read_frame(0)
    assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8 and _is_blue(frame)


def test_folder_multi_sequence_first_box_and_flags(tmp_path):
    root = tmp_path / "custom"
    _folder_seq(root / "seq10", n=3, boxes=[[1, 2, 3, 4]], ext=".png")
    b = _folder_seq(root / "seq2", n=4)
    (b / "absence.label").write_text("0\n1\n0\n0\n")
    (b / "visible.txt").write_text("1\n1\n0\n1\n")
    (root / "not_a_sequence").mkdir()
    ds = FolderDataset(root)
    assert ds.sequence_names == ["seq2", "seq10"]
    assert ds[0].visible.tolist() == [True, False, False, True]
    first_only = ds["seq10"]
    assert first_only.boxes.shape == (3, 4) and np.isnan(first_only.boxes[1:]).all()
    assert first_only.visible.tolist() == [True, False, False]


def test_folder_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="root not found"):
        FolderDataset(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="empty.*empty folder"):
        FolderDataset(empty)
    no_gt = tmp_path / "no_gt"
    _jpg(no_gt / "1.jpg")
    with pytest.raises(InputError, match="no_gt.*no groundtruth.txt"):
        FolderDataset(no_gt)
    imageless = tmp_path / "imageless"
    _write_boxes(imageless / "groundtruth.txt", _boxes(2))
    with pytest.raises(InputError, match="imageless: no images"):
        FolderDataset(imageless)[0]
    mismatch = _folder_seq(tmp_path / "mismatch", n=4, boxes=_boxes(3))
    with pytest.raises(InputError, match=r"groundtruth\.txt: 3 lines but 4 images"):
        FolderDataset(mismatch)[0]
    malformed = _folder_seq(tmp_path / "malformed", n=2, boxes=_boxes(2))
    (malformed / "groundtruth.txt").write_text("1,2,3,4\n1,2,3,four\n")
    with pytest.raises(InputError, match=r"groundtruth\.txt:2"):
        FolderDataset(malformed)[0]


# -- registry --------------------------------------------------------------------------------------
def test_registry_and_open_dataset(got_root, tmp_path):
    assert set(DATASETS) == {
        "lasot", "got10k", "trackingnet", "coco", "folder", "otb", "uav123", "nfs", "tnl2k", "vot"
    }
    ds = open_dataset("GOT10k", got_root)
    assert isinstance(ds, GOT10k) and len(ds) == 3
    with pytest.raises(InputError, match="unknown dataset 'imagenet'.*coco.*folder.*got10k.*lasot.*nfs.*otb"):
        open_dataset("imagenet", got_root)
    with pytest.raises(InputError, match="split_file"):
        open_dataset("got10k", got_root, split="train")


def test_lasot_rejects_other_layouts(got_root, tn_root):
    with pytest.raises(InputError, match="no LaSOT sequences.*GOT-10k"):
        LaSOT(got_root)
    with pytest.raises(InputError, match="no LaSOT sequences.*TrackingNet"):
        LaSOT(tn_root)


# -- shared helpers (data/sequence.py) -------------------------------------------------------------
def _touch(path: Path) -> None:
    """An empty frame file: enough for readers, which never open frames while indexing or loading."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def test_sequence_helpers(tmp_path):
    boxes = np.array([[0, 0, 2, 2], [0, 0, 0, 2], [np.nan, 0, 1, 1], [1, 1, 1, -1]], float)
    assert valid_boxes(boxes).tolist() == [True, False, False, False]
    seq = Sequence("s", [tmp_path / f"{i}.jpg" for i in range(4)], boxes, [True] * 4)
    assert seq.valid.tolist() == [True, False, False, False]
    padded = pad_first_box(np.array([[1.0, 2, 3, 4]]), 3)
    assert padded.shape == (3, 4) and np.isnan(padded[1:]).all()
    assert pad_first_box(boxes, 9) is boxes  # several boxes: the caller checks the count
    flags = tmp_path / "flags.txt"
    flags.write_text("0,1\n\n1.0 0\n")
    assert read_flags(flags, length=4).tolist() == [0, 1, 1, 0]
    flags.write_text("0,1\n\n1,0.5\n")
    with pytest.raises(InputError, match=r"flags\.txt:3: .*'0\.5'"):
        read_flags(flags)
    flags.write_text("0\nyes\n")
    with pytest.raises(InputError, match=r"flags\.txt:2"):
        read_flags(flags)


def test_flag_files_reject_non_integers_with_line(lasot_root, got_root):
    (lasot_root / "bird" / "bird-3" / "out_of_view.txt").write_text("0,0,x,0,0\n")
    with pytest.raises(InputError, match=r"out_of_view\.txt:1"):
        LaSOT(lasot_root)["bird-3"]
    (got_root / "GOT-10k_Train_000002" / "cover.label").write_text("8\n2.5\n8\n")
    with pytest.raises(InputError, match=r"cover\.label:2"):
        GOT10k(got_root)["GOT-10k_Train_000002"]


def test_readers_share_lookup_and_protocol(lasot_root, coco_root):
    ds = LaSOT(lasot_root)
    with pytest.raises(KeyError, match="no LaSOT sequence 'cat-9'"):
        ds["cat-9"]
    with pytest.raises(IndexError):
        ds[-5]
    with pytest.raises(TypeError):
        ds[1.5j]
    assert ds[-4].name == "airplane-1"
    coco = COCO(coco_root)
    with pytest.raises(KeyError, match="no COCO object"):
        coco["1_1"]
    assert "2 objects in 2 images" in repr(coco)


@pytest.mark.parametrize(
    "cls, title", [(OTB, "OTB100"), (UAV123, "UAV123"), (NfS, "NfS"), (TNL2K, "TNL2K"), (VOT, "VOT")]
)
def test_benchmark_readers_reject_missing_and_empty_roots(tmp_path, cls, title):
    with pytest.raises(InputError, match=f"{title} root not found"):
        cls(tmp_path / "missing")
    (tmp_path / "empty" / "notes").mkdir(parents=True)
    with pytest.raises(InputError, match=f"empty: no {title} sequences found .expected"):
        cls(tmp_path / "empty")


# -- LaSOT test set --------------------------------------------------------------------------------
def test_lasot_official_test_list_facts():
    assert len(LASOT_TEST) == 280 and len(set(LASOT_TEST)) == 280
    per_class: dict[str, int] = {}
    for name in LASOT_TEST:
        cls, _, k = name.rpartition("-")
        assert k.isdigit() and 1 <= int(k) <= 20, name
        per_class[cls] = per_class.get(cls, 0) + 1
    assert len(per_class) == 70 and set(per_class.values()) == {4}
    assert LASOT_TEST[:4] == ("airplane-1", "airplane-9", "airplane-13", "airplane-15")
    assert LASOT_TEST[-1] == "volleyball-19"


def test_lasot_test_split_without_testing_set_uses_official_list(tmp_path):
    root = tmp_path / "lasot"
    for name in LASOT_TEST:
        (root / name.rsplit("-", 1)[0] / name).mkdir(parents=True)
    (root / "airplane" / "airplane-2").mkdir()  # a training sequence
    _lasot_seq(root, "bird-2", n=3)  # a test sequence with files
    ds = LaSOT(root, split="test")
    assert ds.sequence_names == list(LASOT_TEST)
    assert "airplane-2" not in ds.sequence_names and len(LaSOT(root)) == 281
    assert len(ds["bird-2"]) == 3
    assert LaSOT(root, split="test", classes=["bird"]).sequence_names == ["bird-2", "bird-3", "bird-15", "bird-17"]
    (root / "zebra" / "zebra-17").rmdir()
    (root / "cat" / "cat-20").rmdir()
    with pytest.raises(InputError, match=r"official LaSOT test list.*2 sequence\(s\) not found.*cat-20, zebra-17"):
        LaSOT(root, split="test")
    with pytest.raises(InputError, match="training_set.txt"):
        LaSOT(root, split="train")  # no built-in train list


# -- GOT-10k val / test ----------------------------------------------------------------------------
def test_got10k_val_folder_with_labels(tmp_path):
    val = tmp_path / "got10k" / "val"
    _got_seq(val, "GOT-10k_Val_000001", n=4, absence=[0, 0, 1, 0], cover=[8, 0, 0, 5], meta=META)
    _got_seq(val, "GOT-10k_Val_000002", n=2, absence=[0, 0], cover=[8, 8])
    (val / "list.txt").write_text("GOT-10k_Val_000002\nGOT-10k_Val_000001\n")
    ds = open_dataset("got10k", val)
    assert ds.sequence_names == ["GOT-10k_Val_000002", "GOT-10k_Val_000001"]  # list.txt order
    seq = ds["GOT-10k_Val_000001"]
    _check_frames(seq)
    np.testing.assert_allclose(seq.boxes, _boxes(4))
    assert seq.visible.tolist() == [True, False, False, True]
    assert seq.extra["absence"].tolist() == [False, False, True, False] and seq.object_class == "fox"


def test_got10k_test_folder_with_list_and_no_labels(tmp_path):
    test = tmp_path / "got10k" / "test"
    _got_seq(test, "GOT-10k_Test_000001", n=5, boxes=[[3, 4, 5, 6]])
    _got_seq(test, "GOT-10k_Test_000002", n=1, boxes=[[1, 2, 3, 4]])
    _got_seq(test, "GOT-10k_Test_000003", n=4, boxes=_boxes(2))
    (test / "list.txt").write_text("GOT-10k_Test_000001\nGOT-10k_Test_000002\nGOT-10k_Test_000003\n")
    ds = GOT10k(test)
    assert len(ds) == 3 and isinstance(ds, SequenceDataset)
    seq = ds[0]
    _check_frames(seq)
    assert seq.boxes.shape == (5, 4) and np.isnan(seq.boxes[1:]).all()
    assert seq.visible.tolist() == [True] + [False] * 4
    assert seq.extra == {} and seq.object_class is None
    one = ds[1]
    assert len(one) == 1 and one.visible.tolist() == [True]
    with pytest.raises(InputError, match=r"groundtruth\.txt: 2 boxes for 4 frames"):
        ds[2]  # neither one box per frame nor a first-frame box


# -- TrackingNet TEST ------------------------------------------------------------------------------
def test_trackingnet_test_chunk_lookup_and_bad_inputs(tn_root):
    ds = TrackingNet(tn_root, chunks="test")
    assert ds.chunks == ["TEST"] and ds.sequence_names == ["vidT"] and "TEST" in repr(ds)
    assert ds["vidT"].extra["chunk"] == "TEST" and len(ds["vidT"]) == 11
    with pytest.raises(KeyError, match="vidA"):
        ds["vidA"]  # a TRAIN video is not in the TEST chunk
    _write_boxes(tn_root / "TEST" / "anno" / "vidU.txt", [[1, 2, 3, 4]])  # frames folder missing
    with pytest.raises(InputError, match=r"vidU: missing TrackingNet frame folder"):
        TrackingNet(tn_root, chunks="TEST")["vidU"]
    (tn_root / "TEST" / "anno" / "vidT.txt").write_text("2,3,4\n")
    with pytest.raises(InputError, match=r"vidT\.txt:1"):
        TrackingNet(tn_root, chunks="TEST")["vidT"]
    _write_boxes(tn_root / "TEST" / "anno" / "vidT.txt", _boxes(3))
    with pytest.raises(InputError, match=r"vidT\.txt: 3 boxes for 11 frames"):
        TrackingNet(tn_root, chunks="TEST")["vidT"]


# -- OTB100 ----------------------------------------------------------------------------------------
def _otb_tree(root: Path, full: dict[str, str] | None = None, frames=()) -> Path:
    """Every OTB100 annotation file (a placeholder line), real annotations (separated by ``sep``)
    for the sequences in ``full`` ({name: sep}) and frame files for those in ``frames``."""
    for name, entry in OTB_SEQUENCES.items():
        (root / entry.anno).parent.mkdir(parents=True, exist_ok=True)
        (root / entry.anno).write_text("1,1,1,1\n")
    for name, sep in (full or {}).items():
        entry = OTB_SEQUENCES[name]
        _write_boxes(root / entry.anno, _boxes(entry.last - entry.first + 1), sep=sep)
    for name in frames:
        entry = OTB_SEQUENCES[name]
        for i in range(entry.first, entry.last + 1):
            _touch(root / entry.folder / f"{i:0{entry.digits}d}.{entry.ext}")
    return root


def test_otb_table_facts():
    assert len(OTB_SEQUENCES) == 100
    assert len({e.folder for e in OTB_SEQUENCES.values()}) == 98
    facts = {"David": (300, 770), "Football1": (1, 74), "Freeman3": (1, 460), "Freeman4": (1, 283),
             "Diving": (1, 215), "BlurCar1": (247, 988), "BlurCar3": (3, 359), "BlurCar4": (18, 397),
             "Tiger1": (1, 354)}
    for name, (first, last) in facts.items():
        assert (OTB_SEQUENCES[name].first, OTB_SEQUENCES[name].last) == (first, last), name
    assert OTB_SEQUENCES["Tiger1"].omit == 5 and OTB_SEQUENCES["Board"].digits == 5
    assert OTB_SEQUENCES["Jogging_2"].anno == "Jogging/groundtruth_rect.2.txt"
    assert OTB_SEQUENCES["Human4_2"].folder == "Human4/img"


def test_otb_frame_ranges_two_targets_and_separators(tmp_path):
    seps = {"David": ",", "Tiger1": "\t", "Board": " ", "Jogging_2": ",", "KiteSurf": ","}
    root = _otb_tree(tmp_path / "otb", seps, frames=["KiteSurf"])
    ds = OTB(root)
    assert isinstance(ds, SequenceDataset) and ds.name == "otb" and len(ds) == 100
    assert ds.sequence_names[0] == "Basketball" and {"Jogging_1", "Jogging_2", "Skating2_2"} <= set(ds.sequence_names)
    _check_frames(ds["KiteSurf"])
    david = ds["David"]
    assert len(david) == 471 and david.frames[0].name == "0300.jpg" and david.frames[-1].name == "0770.jpg"
    tiger = ds["Tiger1"]  # first 5 annotated frames left out
    assert len(tiger) == 349 and tiger.frames[0].name == "0006.jpg"
    np.testing.assert_allclose(tiger.boxes[0], _boxes(354)[5])
    board = ds["Board"]
    assert board.frames[0].name == "00001.jpg" and len(board) == 698
    jog = ds["Jogging_2"]
    assert jog.frames[0] == root / "Jogging" / "img" / "0001.jpg" and len(jog) == 307
    assert ds["KiteSurf"].frames[0].suffix == ".png" and ds["KiteSurf"].visible.all()
    subset = OTB(root, sequences=["Tiger1", "David"])
    assert subset.sequence_names == ["Tiger1", "David"] and "2 sequences of 100" in repr(subset)


def test_otb_bad_inputs(tmp_path):
    root = _otb_tree(tmp_path / "otb", {"Deer": ","})
    (root / "Woman" / "groundtruth_rect.txt").unlink()
    with pytest.raises(InputError, match=r"1 of 100 OTB100 sequences missing.*sequences=.*Woman"):
        OTB(root)
    assert len(OTB(root, sequences=["Deer"])) == 1
    with pytest.raises(InputError, match="unknown sequence name.*Jogging, Nope"):
        OTB(root, sequences=["Deer", "Jogging", "Nope"])
    with pytest.raises(KeyError):
        OTB(root, sequences="Deer")["David"]
    (root / "Deer" / "groundtruth_rect.txt").write_text("1,2,3,4\n1,2,3\n")
    with pytest.raises(InputError, match=r"Deer.groundtruth_rect\.txt:2"):
        OTB(root, sequences=["Deer"])[0]
    _write_boxes(root / "Deer" / "groundtruth_rect.txt", _boxes(70))
    with pytest.raises(InputError, match=r"70 boxes, but OTB100 sequence Deer has 71 frames"):
        OTB(root, sequences=["Deer"])[0]


# -- UAV123 ----------------------------------------------------------------------------------------
def _uav_tree(root: Path, full=()) -> Path:
    for name, entry in UAV123_SEQUENCES.items():
        (root / entry.anno).parent.mkdir(parents=True, exist_ok=True)
        (root / entry.anno).write_text("1,1,1,1\n")
    for name in full:
        entry = UAV123_SEQUENCES[name]
        boxes = _boxes(entry.last - entry.first + 1)
        boxes[1] = [float("nan")] * 4  # target out of view
        _write_boxes(root / entry.anno, boxes)
        for i in range(entry.first, entry.last + 1):
            _touch(root / entry.folder / f"{i:06d}.jpg")
    return root


def test_uav123_sub_sequences_and_nan_rows(tmp_path):
    assert len(UAV123_SEQUENCES) == 123 and len({e.folder for e in UAV123_SEQUENCES.values()}) == 91
    assert (UAV123_SEQUENCES["bird1_2"].first, UAV123_SEQUENCES["bird1_2"].last) == (775, 1477)
    assert UAV123_SEQUENCES["car1_s"].folder == "data_seq/UAV123/car1_s"
    root = _uav_tree(tmp_path / "uav", ["bird1_2", "uav2"])
    ds = open_dataset("uav123", root)
    assert isinstance(ds, UAV123) and isinstance(ds, SequenceDataset) and len(ds) == 123
    seq = ds["bird1_2"]
    _check_frames(seq)
    assert len(seq) == 703 and seq.frames[0] == root / "data_seq" / "UAV123" / "bird1" / "000775.jpg"
    assert seq.frames[-1].name == "001477.jpg"
    assert np.isnan(seq.boxes[1]).all() and seq.visible.tolist()[:3] == [True, False, True]
    assert len(ds["uav2"]) == 133


def test_uav123_bad_inputs(tmp_path):
    root = _uav_tree(tmp_path / "uav", ["uav2"])
    (root / "anno" / "UAV123" / "car6_5.txt").unlink()
    with pytest.raises(InputError, match=r"1 of 123 UAV123 sequences missing.*car6_5"):
        UAV123(root)
    with pytest.raises(InputError, match="unknown sequence name.*bird1"):
        UAV123(root, sequences=["uav2", "bird1"])  # the video, not one of its sequences
    (root / "anno" / "UAV123" / "uav2.txt").write_text("1,2,3,4\nNaN,NaN,NaN\n")
    with pytest.raises(InputError, match=r"uav2\.txt:2"):
        UAV123(root, sequences=["uav2"])[0]


# -- NfS -------------------------------------------------------------------------------------------
def _nfs_seq(root: Path, name: str, n_frames: int, rows: list[str], fps: int = 30) -> None:
    for i in range(1, n_frames + 1):
        _touch(root / name / str(fps) / name / f"{i:05d}.jpg")
    (root / name / str(fps) / f"{name}.txt").write_text("".join(r + "\n" for r in rows))


def _nfs_row(i: int, x1: float, y1: float, x2: float, y2: float) -> str:
    return f'1 {x1:g} {y1:g} {x2:g} {y2:g} {i} 0 0 0 "person"'


def test_nfs_corner_boxes_240fps_rows_and_off_by_one(tmp_path):
    root = tmp_path / "nfs"
    _nfs_seq(root, "Gymnastics", 3, [_nfs_row(i, 10 + i, 20, 50 + i, 80) for i in range(3)])
    _nfs_seq(root, "bee", 2, [_nfs_row(i, i, i, i + 10, i + 5) for i in range(16)])  # 240 fps rows
    _nfs_seq(root, "car_camaro", 4, [_nfs_row(i, 1, 1, 5, 5) for i in range(3)])  # one row short
    _nfs_seq(root, "cup", 2, [_nfs_row(i, 1, 1, 5, 5) for i in range(2)], fps=240)
    ds = NfS(root)
    assert isinstance(ds, SequenceDataset) and ds.name == "nfs" and "fps=30" in repr(ds)
    assert ds.sequence_names == ["bee", "car_camaro", "Gymnastics"]
    gym = ds["Gymnastics"]
    _check_frames(gym)
    np.testing.assert_allclose(gym.boxes[1], [11, 20, 40, 60])  # x1,y1,x2,y2 -> x,y,w,h
    assert gym.frames[0] == root / "Gymnastics" / "30" / "Gymnastics" / "00001.jpg"
    bee = ds["bee"]
    np.testing.assert_allclose(bee.boxes, [[0, 0, 10, 5], [8, 8, 10, 5]])  # rows 0 and 8
    camaro = ds["car_camaro"]
    assert len(camaro) == 3 and camaro.frames[-1].name == "00003.jpg"
    assert NfS(root, fps=240).sequence_names == ["cup"]


def test_nfs_pytracking_layout_names_sequences_as_pytracking(tmp_path):
    root = tmp_path / "nfs"
    for i in range(1, 5):
        _touch(root / "sequences" / "Gymnastics" / f"{i:05d}.jpg")
    (root / "anno").mkdir()
    (root / "anno" / "nfs_Gymnastics.txt").write_text("10\t20\t30\t40\n11 21 30 40\n12,22,0,0\n")
    ds = NfS(root)
    assert ds.sequence_names == ["nfs_Gymnastics"]
    seq = ds["nfs_Gymnastics"]
    assert len(seq) == 3 and seq.frames[-1] == root / "sequences" / "Gymnastics" / "00003.jpg"  # 4th not annotated
    np.testing.assert_allclose(seq.boxes[1], [11, 21, 30, 40])
    assert seq.visible.tolist() == [True, True, False]
    with pytest.raises(InputError, match="30 fps version only"):
        NfS(root, fps=240)
    (root / "anno" / "nfs_Gymnastics.txt").write_text("1 2 3 4\n" * 5)
    with pytest.raises(InputError, match=r"nfs_Gymnastics\.txt: 5 boxes for 4 frames"):
        NfS(root)["nfs_Gymnastics"]


def test_nfs_bad_inputs(tmp_path):
    root = tmp_path / "nfs"
    root.mkdir()
    with pytest.raises(InputError, match="fps must be 30 or 240"):
        NfS(root, fps=60)
    _nfs_seq(root, "dog", 2, [_nfs_row(0, 1, 1, 5, 5), "1 2 3 4"])
    with pytest.raises(InputError, match=r"dog\.txt:2: expected"):
        NfS(root)["dog"]
    _nfs_seq(root, "dog", 2, [_nfs_row(0, 1, 1, 5, 5), "1 2 x 4 5 1"])
    with pytest.raises(InputError, match=r"dog\.txt:2: not a number"):
        NfS(root)["dog"]
    _nfs_seq(root, "dog", 5, [_nfs_row(0, 1, 1, 5, 5)] * 2)
    with pytest.raises(InputError, match=r"dog\.txt: 2 boxes for 5 frames"):
        NfS(root)["dog"]
    with pytest.raises(KeyError, match="no NfS sequence 'cat'"):
        NfS(root)["cat"]


# -- TNL2K -----------------------------------------------------------------------------------------
def _tnl2k_seq(root: Path, name: str, n: int, ext: str = ".png", language: str | None = "the red car") -> Path:
    folder = root / name
    for i in range(1, n + 1):
        _touch(folder / "imgs" / f"{i}{ext}")
    _write_boxes(folder / "groundtruth.txt", _boxes(n))
    if language is not None:
        (folder / "language.txt").write_text(language + "\n")
    return folder


def test_tnl2k_frames_language_and_order(tmp_path):
    root = tmp_path / "tnl2k"
    _tnl2k_seq(root, "Assassin_video_1-Done", 11)
    _tnl2k_seq(root, "advSamp_Baseball_game_002-Done", 2, ext=".jpg", language=None)
    (root / "notes").mkdir()
    ds = open_dataset("tnl2k", root)
    assert isinstance(ds, TNL2K) and isinstance(ds, SequenceDataset) and len(ds) == 2
    seq = ds["Assassin_video_1-Done"]
    _check_frames(seq)
    assert [p.name for p in seq.frames][:3] == ["1.png", "2.png", "3.png"] and seq.frames[-1].name == "11.png"
    assert seq.extra["language"] == "the red car" and seq.visible.all()
    assert ds["advSamp_Baseball_game_002-Done"].extra["language"] is None


def test_tnl2k_bad_inputs(tmp_path):
    root = tmp_path / "tnl2k"
    folder = _tnl2k_seq(root, "seq", 3)
    (folder / "groundtruth.txt").write_text("1,2,3,4\n1,2,3,4,5\n1,2,3,4\n")
    with pytest.raises(InputError, match=r"seq.groundtruth\.txt:2"):
        TNL2K(root)[0]
    _write_boxes(folder / "groundtruth.txt", _boxes(2))
    with pytest.raises(InputError, match=r"groundtruth\.txt: 2 boxes for 3 frames"):
        TNL2K(root)[0]
    for p in (folder / "imgs").iterdir():
        p.unlink()
    with pytest.raises(InputError, match="imgs: folder holds no"):
        TNL2K(root)[0]
    with pytest.raises(KeyError):
        TNL2K(root)["other"]


# -- VOT -------------------------------------------------------------------------------------------
def _vot_seq(root: Path, name: str, regions: list[str], meta: str | None = "channels.color=color/%08d.jpg\nfps=30\n"):
    folder = root / name
    for i in range(1, len(regions) + 1):
        _touch(folder / "color" / f"{i:08d}.jpg")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "groundtruth.txt").write_text("".join(r + "\n" for r in regions))
    if meta is not None:
        (folder / "sequence").write_text(meta)
    return folder


def test_vot_rectangles_polygons_and_special_regions(tmp_path):
    root = tmp_path / "vot" / "sequences"
    _vot_seq(root, "agility", ["10,20,30,40", "1,2,11,2,11,7,1,7", "0", "nan,nan,nan,nan", "5.5,6,7,8"])
    _vot_seq(root, "ball2", ["1,1,4,4"], meta=None)
    (root / "list.txt").write_text("agility\nball2\n")
    ds = open_dataset("vot", root)
    assert isinstance(ds, VOT) and isinstance(ds, SequenceDataset) and ds.sequence_names == ["agility", "ball2"]
    seq = ds["agility"]
    _check_frames(seq)
    assert seq.frames[0] == root / "agility" / "color" / "00000001.jpg"
    np.testing.assert_allclose(seq.boxes[[0, 1, 4]], [[10, 20, 30, 40], [1, 2, 10, 5], [5.5, 6, 7, 8]])
    assert np.isnan(seq.boxes[2:4]).all() and seq.visible.tolist() == [True, True, False, False, True]
    assert seq.extra["metadata"]["fps"] == "30"
    ball = ds["ball2"]  # no sequence file: color/%08d.jpg
    _check_frames(ball)


def test_vot_bad_inputs(tmp_path):
    root = tmp_path / "sequences"
    _vot_seq(root, "bag", ["1,2,3,4", "m10,10,4,4,1,2,3"])
    _vot_seq(root, "bolt", ["1,2,3,4,5"])
    _vot_seq(root, "fish", ["1,2,3,4"], meta="channels.depth=depth/%08d.png\n")
    _vot_seq(root, "hand", ["1,2,3,4"], meta="channels.color=color/frame.jpg\n")
    _vot_seq(root, "iceskater", ["1,2,3,4"], meta="fps 30\n")
    (root / "list.txt").write_text("bag\nbolt\nfish\nhand\niceskater\n")
    ds = VOT(root)
    with pytest.raises(InputError, match=r"bag.groundtruth\.txt:2: segmentation-mask"):
        ds["bag"]
    with pytest.raises(InputError, match=r"bolt.groundtruth\.txt:1: expected a rectangle"):
        ds["bolt"]
    with pytest.raises(InputError, match=r"fish.sequence: no channels.color.*channels.depth"):
        ds["fish"]
    with pytest.raises(InputError, match="bad frame pattern"):
        ds["hand"]
    with pytest.raises(InputError, match=r"iceskater.sequence:1: expected key=value"):
        ds["iceskater"]
    with pytest.raises(KeyError):
        ds["car1"]
    (root / "list.txt").write_text("bag\ncar1\n")
    with pytest.raises(InputError, match=r"list\.txt: 1 listed sequence folder.*car1"):
        VOT(root)
