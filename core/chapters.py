"""KCD-8 (ICD-10) chapters, and code ranges to filter results by ("I20-I25", a chapter)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InputError


@dataclass(frozen=True)
class CodeRange:
    """Three-character categories `first` … `last` (inclusive); a chapter has a number and
    titles. `contains` takes any code of the KCD / ICD-10 shape (K74.6, k746)."""

    first: str
    last: str
    number: str = ""
    ko: str = ""
    en: str = ""

    def contains(self, code: str) -> bool:
        category = re.sub(r"[\s.]", "", code).upper()[:3]
        return len(category) == 3 and self.first <= category <= self.last

    @property
    def label(self) -> str:
        span = f"{self.first}–{self.last}"
        return f"{self.number}. {span} {self.ko} / {self.en}" if self.number else span


# the chapters of KCD-8 (as of ICD-10, with KCD's U chapter), Korean and English titles
CHAPTERS = tuple(
    CodeRange(first, last, number, ko, en)
    for number, first, last, ko, en in (
        ("I", "A00", "B99", "특정 감염성 및 기생충성 질환", "Certain infectious and parasitic diseases"),
        ("II", "C00", "D48", "신생물", "Neoplasms"),
        (
            "III",
            "D50",
            "D89",
            "혈액 및 조혈기관의 질환과 면역메커니즘을 침범하는 특정 장애",
            "Diseases of the blood and blood-forming organs and certain disorders involving the immune mechanism",
        ),
        ("IV", "E00", "E90", "내분비, 영양 및 대사 질환", "Endocrine, nutritional and metabolic diseases"),
        ("V", "F00", "F99", "정신 및 행동 장애", "Mental and behavioural disorders"),
        ("VI", "G00", "G99", "신경계통의 질환", "Diseases of the nervous system"),
        ("VII", "H00", "H59", "눈 및 눈부속기의 질환", "Diseases of the eye and adnexa"),
        ("VIII", "H60", "H95", "귀 및 유돌의 질환", "Diseases of the ear and mastoid process"),
        ("IX", "I00", "I99", "순환계통의 질환", "Diseases of the circulatory system"),
        ("X", "J00", "J99", "호흡계통의 질환", "Diseases of the respiratory system"),
        ("XI", "K00", "K93", "소화계통의 질환", "Diseases of the digestive system"),
        ("XII", "L00", "L99", "피부 및 피하조직의 질환", "Diseases of the skin and subcutaneous tissue"),
        (
            "XIII",
            "M00",
            "M99",
            "근골격계통 및 결합조직의 질환",
            "Diseases of the musculoskeletal system and connective tissue",
        ),
        ("XIV", "N00", "N99", "비뇨생식계통의 질환", "Diseases of the genitourinary system"),
        ("XV", "O00", "O99", "임신, 출산 및 산후기", "Pregnancy, childbirth and the puerperium"),
        (
            "XVI",
            "P00",
            "P96",
            "출생전후기에 기원한 특정 병태",
            "Certain conditions originating in the perinatal period",
        ),
        (
            "XVII",
            "Q00",
            "Q99",
            "선천기형, 변형 및 염색체이상",
            "Congenital malformations, deformations and chromosomal abnormalities",
        ),
        (
            "XVIII",
            "R00",
            "R99",
            "달리 분류되지 않은 증상, 징후와 임상 및 검사의 이상소견",
            "Symptoms, signs and abnormal clinical and laboratory findings, not elsewhere classified",
        ),
        (
            "XIX",
            "S00",
            "T98",
            "손상, 중독 및 외인에 의한 특정 기타 결과",
            "Injury, poisoning and certain other consequences of external causes",
        ),
        ("XX", "V01", "Y98", "질병이환 및 사망의 외인", "External causes of morbidity and mortality"),
        (
            "XXI",
            "Z00",
            "Z99",
            "건강상태 및 보건서비스 접촉에 영향을 주는 요인",
            "Factors influencing health status and contact with health services",
        ),
        ("XXII", "U00", "U99", "특수목적 코드", "Codes for special purposes"),
    )
)

_CATEGORY = re.compile(r"^[A-Z]\d{2}$")


def parse_range(text: str) -> CodeRange:
    """A chapter by its number (IX, 9) or a range of categories (I20-I25, I20–I25, K74)."""
    value = text.strip().upper().replace("–", "-").replace(" ", "")
    for chapter in CHAPTERS:
        if value in (chapter.number, str(CHAPTERS.index(chapter) + 1)):
            return chapter
    first, _, last = value.partition("-")
    last = last or first
    if not (_CATEGORY.match(first) and _CATEGORY.match(last)) or first > last:
        raise InputError(
            f"{text!r}: give a chapter (I … XXII) or a range of three-character categories, e.g. I20-I25"
        )
    return CodeRange(first, last)
