"""Test data shared by the test modules: a small register and registration files."""

import random
from pathlib import Path

from examflow.synthetic import REGISTRATION_HEADER, make_id_number, write_csv

OPEN = "2024-04-20T10:00:00"
LAST_SECOND = "2024-04-29T23:59:59"
FIRST_SECOND_AFTER = "2024-04-30T00:00:01"

# code, name, province, pilot, scale, site, seats, affairs, tech
SCHOOLS = [
    ["P1", "一号职业技术学院", "北京市", "是", "5", "是", "3", "a@p1.edu.cn", "t@p1.edu.cn"],
    ["P2", "二号职业学院", "北京市", "是", "100", "否", "", "a@p2.edu.cn", ""],
    ["N1", "三号非试点学院", "河北省", "否", "", "否", "", "a@n1.edu.cn", ""],
    ["P3", "四号职业技术学院", "河北省", "是", "500", "是", "100", "a@p3.edu.cn", "t@p3.edu.cn"],
    ["P4", "五号考点学院", "北京市", "是", "500", "是", "2", "a@p4.edu.cn", "t@p4.edu.cn"],
]
_rng = random.Random(7)


def new_id() -> str:
    return make_id_number(_rng, "11")


def reg_file(tmp_path: Path, rows: list[list[str]], name: str = "reg.csv", **kw: str) -> Path:
    return write_csv(tmp_path / name, REGISTRATION_HEADER, rows, **kw)
