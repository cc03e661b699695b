"""UAV123: 123 sequences cut from 91 videos.

Layout::

    <root>/data_seq/UAV123/<video>/000001.jpg ...   (6 digits, 1-based)
    <root>/anno/UAV123/<sequence>.txt               x,y,w,h per line (comma); NaN rows where the target is out of view

A sequence named ``<video>_<k>`` (``bird1_1``, ``car6_4``, ...) is the frame range of its video given
in the table below; ``car1_s``-style names are videos of their own. The ranges come from the
sequence table of pytracking's ``pytracking/evaluation/uavdataset.py`` (names without its ``uav_``
prefix, as the annotation files are named).

visible = a valid box (NaN rows are not visible). Indexing checks the annotation files exist; boxes
are read in ``__getitem__``.
"""

from __future__ import annotations

import re

from .base import FrameRange, FrameRangeDataset, range_table

LAYOUT = "<root>/data_seq/UAV123/<video>/000001.jpg ... and <root>/anno/UAV123/<sequence>.txt"

# <name> <last frame> (frames 1..last) or <name> <first>-<last>.
_RANGES = """
bike1 3085            bike2 553             bike3 433             bird1_1 1-253         bird1_2 775-1477
bird1_3 1573-2437     boat1 901             boat2 799             boat3 901             boat4 553
boat5 505             boat6 805             boat7 535             boat8 685             boat9 1399
building1 469         building2 577         building3 829         building4 787         building5 481
car1_1 1-751          car1_2 751-1627       car1_3 1627-2629      car10 1405            car11 337
car12 499             car13 415             car14 1327            car15 469             car16_1 1-415
car16_2 415-1993      car17 1057            car18 1207            car1_s 1475           car2 1321
car2_s 320            car3 1717             car3_s 1300           car4 1345             car4_s 830
car5 745              car6_1 1-487          car6_2 487-1807       car6_3 1807-2953      car6_4 2953-3925
car6_5 3925-4861      car7 1033             car8_1 1-1357         car8_2 1357-2575      car9 1879
group1_1 1-1333       group1_2 1333-2515    group1_3 2515-3925    group1_4 3925-4873    group2_1 1-907
group2_2 907-1771     group2_3 1771-2683    group3_1 1-1567       group3_2 1567-2827    group3_3 2827-4369
group3_4 4369-5527    person1 799           person10 1021         person11 721          person12_1 1-601
person12_2 601-1621   person13 883          person14_1 1-847      person14_2 847-1813   person14_3 1813-2923
person15 1339         person16 1147         person17_1 1-1501     person17_2 1501-2347  person18 1393
person19_1 1-1243     person19_2 1243-2791  person19_3 2791-4357  person1_s 1600        person2_1 1-1189
person2_2 1189-2623   person20 1783         person21 487          person22 199          person23 397
person2_s 250         person3 643           person3_s 505         person4_1 1-1501      person4_2 1501-2743
person5_1 1-877       person5_2 877-2101    person6 901           person7_1 1-1249      person7_2 1249-2065
person8_1 1-1075      person8_2 1075-1525   person9 661           truck1 463            truck2 385
truck3 535            truck4_1 1-577        truck4_2 577-1261     uav1_1 1-1555         uav1_2 1555-2377
uav1_3 2473-3469      uav2 133              uav3 265              uav4 157              uav5 139
uav6 109              uav7 373              uav8 301              wakeboard1 421        wakeboard10 469
wakeboard2 733        wakeboard3 823        wakeboard4 697        wakeboard5 1675       wakeboard6 1165
wakeboard7 199        wakeboard8 1543       wakeboard9 355
"""


def _entry(name: str, first: int, last: int) -> FrameRange:
    video = re.sub(r"_\d+$", "", name)  # bird1_2 -> bird1; car1_s stays
    return FrameRange(f"data_seq/UAV123/{video}", first, last, f"anno/UAV123/{name}.txt", digits=6)


UAV123_SEQUENCES: dict[str, FrameRange] = range_table(_RANGES, _entry)


class UAV123(FrameRangeDataset, table=UAV123_SEQUENCES, layout=LAYOUT):
    """UAV123 reader: ``UAV123(root, sequences=None)`` (None: all 123 sequences, or a list of names)."""

    name = "uav123"
    title = "UAV123"
