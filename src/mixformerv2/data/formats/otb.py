"""OTB100 (OTB-2015): 98 videos, 100 targets.

Layout::

    <root>/<Video>/img/0001.jpg ...               (4 digits; Board: 5 digits; KiteSurf: .png)
    <root>/<Video>/groundtruth_rect.txt           x,y,w,h per line (comma, tab or space separated)
    <root>/Jogging/groundtruth_rect.1.txt, .2.txt two targets of one video (Skating2 too; Human4: .2)

Some sequences use a frame range of their video rather than every image (David 300-770,
BlurCar1 247-988, ...), and Tiger1 leaves out its first 5 annotated frames; the annotation file of
such a sequence has one line per frame of the range. The facts come from the sequence table of
pytracking's ``pytracking/evaluation/otbdataset.py`` (names as there: ``Jogging_1``, ``Jogging_2``,
``Skating2_1``, ``Skating2_2``, ``Human4_2``).

visible = a valid box (w > 0, h > 0). Indexing checks the annotation files exist; boxes are read in
``__getitem__``.
"""

from __future__ import annotations

from .base import FrameRange, FrameRangeDataset, range_table

LAYOUT = "<root>/<Video>/{groundtruth_rect.txt, img/0001.jpg, ...}"

# <name> <last frame> (frames 1..last) or <name> <first>-<last>; one line per initial letter.
_RANGES = """
Basketball 725  Biker 142  Bird1 408  Bird2 99  BlurBody 334  BlurCar1 247-988  BlurCar2 585  BlurCar3 3-359
    BlurCar4 18-397  BlurFace 493  BlurOwl 631  Board 698  Bolt 350  Bolt2 293  Box 1161  Boy 602
Car1 1020  Car2 913  Car24 3059  Car4 659  CarDark 393  CarScale 252  ClifBar 472  Coke 291  Couple 140
    Coupon 327  Crossing 120  Crowds 347
Dancer 225  Dancer2 150  David 300-770  David2 537  David3 252  Deer 71  Diving 215  Dog 127  Dog1 1350
    Doll 3872  DragonBaby 113  Dudek 1145
FaceOcc1 892  FaceOcc2 812  Fish 476  FleetFace 707  Football 362  Football1 74  Freeman1 326  Freeman3 460
    Freeman4 283
Girl 500  Girl2 1500  Gym 767
Human2 1128  Human3 1698  Human4_2 667  Human5 713  Human6 792  Human7 250  Human8 128  Human9 305
Ironman 166
Jogging_1 307  Jogging_2 307  Jump 122  Jumping 313
KiteSurf 84
Lemming 1336  Liquor 1741
Man 134  Matrix 100  Mhyang 1490  MotorRolling 164  MountainBike 228
Panda 1000
RedTeam 1918  Rubik 1997
Shaking 365  Singer1 351  Singer2 366  Skater 160  Skater2 435  Skating1 400  Skating2_1 473  Skating2_2 473
    Skiing 81  Soccer 392  Subway 175  Surfer 376  Suv 945  Sylvester 1345
Tiger1 354  Tiger2 365  Toy 271  Trans 124  Trellis 569  Twinnings 472
Vase 271
Walking 412  Walking2 500  Woman 597
"""

# Sequences that differ from "<name>/img/%04d.jpg, <name>/groundtruth_rect.txt".
_SPECIAL: dict[str, dict] = {
    "Board": {"digits": 5},
    "KiteSurf": {"ext": "png"},
    "Tiger1": {"omit": 5},
    "Human4_2": {"video": "Human4", "anno": "groundtruth_rect.2.txt"},
    "Jogging_1": {"video": "Jogging", "anno": "groundtruth_rect.1.txt"},
    "Jogging_2": {"video": "Jogging", "anno": "groundtruth_rect.2.txt"},
    "Skating2_1": {"video": "Skating2", "anno": "groundtruth_rect.1.txt"},
    "Skating2_2": {"video": "Skating2", "anno": "groundtruth_rect.2.txt"},
}


def _entry(name: str, first: int, last: int) -> FrameRange:
    special = dict(_SPECIAL.get(name, {}))
    video = special.pop("video", name)
    anno = special.pop("anno", "groundtruth_rect.txt")
    return FrameRange(f"{video}/img", first, last, f"{video}/{anno}", **special)


OTB_SEQUENCES: dict[str, FrameRange] = range_table(_RANGES, _entry)


class OTB(FrameRangeDataset, table=OTB_SEQUENCES, layout=LAYOUT):
    """OTB100 reader: ``OTB(root, sequences=None)`` (None: all 100 sequences, or a list of names)."""

    name = "otb"
    title = "OTB100"
