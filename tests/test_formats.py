"""Dataset readers (data/formats/*) on tiny trees built in each real on-disk layout."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from mixformerv2.data.formats import COCO, DATASETS, GOT10k, FolderDataset, LaSOT, TrackingNet, open_dataset
from mixformerv2.data.sequence import Sequence, SequenceDataset
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
    assert set(DATASETS) == {"lasot", "got10k", "trackingnet", "coco", "folder"}
    ds = open_dataset("GOT10k", got_root)
    assert isinstance(ds, GOT10k) and len(ds) == 3
    with pytest.raises(InputError, match="unknown dataset 'otb'.*coco.*folder.*got10k.*lasot.*trackingnet"):
        open_dataset("otb", got_root)
    with pytest.raises(InputError, match="split_file"):
        open_dataset("got10k", got_root, split="train")


def test_lasot_rejects_other_layouts(got_root, tn_root):
    with pytest.raises(InputError, match="no LaSOT sequences.*GOT-10k"):
        LaSOT(got_root)
    with pytest.raises(InputError, match="no LaSOT sequences.*TrackingNet"):
        LaSOT(tn_root)
