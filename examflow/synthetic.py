"""A synthetic, reproducible register and registrations: for the demo, tests and benchmarks.

Every ID number is made up (valid check digit, random region of a real province, random
birth date); names are drawn from common characters. Nothing here is a real person.
"""

import csv
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from models.domain import Level
from models.resident_id import check_digit

PROVINCES = {
    "11": "北京市",
    "12": "天津市",
    "13": "河北省",
    "31": "上海市",
    "32": "江苏省",
    "33": "浙江省",
    "37": "山东省",
    "41": "河南省",
    "44": "广东省",
    "51": "四川省",
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰"
SCHOOL_HEADER = [
    "学校代码",
    "学校名称",
    "省份",
    "是否试点",
    "试点人数规模",
    "是否考点",
    "考位数",
    "考务联系人邮箱",
    "技术联系人邮箱",
]
REGISTRATION_HEADER = ["学校代码", "姓名", "身份证号", "级别", "考点代码"]


@dataclass(frozen=True)
class SyntheticSchool:
    code: str
    name: str
    prefix: str
    is_pilot: bool
    is_site: bool
    seats: int
    pilot_scale: int
    host: str | None  # the site a non-site school borrows

    @property
    def province(self) -> str:
        return PROVINCES[self.prefix]

    def row(self) -> list[str]:
        return [
            self.code,
            self.name,
            self.province,
            "是" if self.is_pilot else "否",
            str(self.pilot_scale) if self.is_pilot else "",
            "是" if self.is_site else "否",
            str(self.seats) if self.is_site else "",
            f"affairs@{self.code.lower()}.example.edu.cn",
            f"tech@{self.code.lower()}.example.edu.cn" if self.is_site else "",
        ]


def make_id_number(rng: random.Random, prefix: str | None = None) -> str:
    region = (
        prefix or rng.choice(list(PROVINCES))
    ) + f"{rng.randint(1, 99):02d}{rng.randint(1, 99):02d}"
    birth = date(1998, 1, 1) + timedelta(days=rng.randint(0, 365 * 8))
    first17 = f"{region}{birth:%Y%m%d}{rng.randint(0, 999):03d}"
    return first17 + check_digit(first17)


def make_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2)))


def make_schools(
    n_schools: int, n_sites: int, *, seats: int = 200, pilot_scale: int = 2000, seed: int = 1
) -> list[SyntheticSchool]:
    """``n_sites`` pilot sites, then non-site pilot and non-pilot schools each borrowing a site."""
    rng = random.Random(seed)
    prefixes = list(PROVINCES)
    schools = []
    for i in range(n_schools):
        prefix = prefixes[i % len(prefixes)]
        is_site = i < n_sites
        is_pilot = is_site or i % 3 != 0
        schools.append(
            SyntheticSchool(
                code=f"S{i + 1:05d}",
                name=f"{PROVINCES[prefix][:2]}第{i + 1}职业技术学院",
                prefix=prefix,
                is_pilot=is_pilot,
                is_site=is_site,
                seats=seats,
                pilot_scale=pilot_scale,
                host=None if is_site else f"S{rng.randrange(n_sites) + 1:05d}",
            )
        )
    return schools


def make_registrations(
    schools: list[SyntheticSchool], n: int, levels: list[Level], seed: int = 2
) -> list[list[str]]:
    """``n`` registration rows spread over the schools, each at its own or host site."""
    rng = random.Random(seed)
    rows = []
    seen: set[str] = set()
    for i in range(n):
        school = schools[i % len(schools)]
        id_number = make_id_number(rng, school.prefix)
        while id_number in seen:
            id_number = make_id_number(rng, school.prefix)
        seen.add(id_number)
        level = levels[i // len(schools) % len(levels)]
        site = "" if school.is_site else (school.host or "")
        rows.append([school.code, make_name(rng), id_number, level.value, site])
    return rows


def write_csv(
    path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8"
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding=encoding) as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path
