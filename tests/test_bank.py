"""The open synonym bank: attachment rules, the artefact, and what training takes from it."""

from __future__ import annotations

import random

import pytest

from core.dictionary import Concept, Dictionary, Term, add_bank, load_dictionary, read_bank
from core.evaluation import held_out
from core.text import normalize


def kcd_like(rows: dict[str, tuple[str, str]]) -> Dictionary:
    concepts = {
        code: Concept(code, "KCD-8", None, [Term(ko, "ko", True), Term(en, "en", True)])
        for code, (ko, en) in rows.items()
    }
    return Dictionary("kcd", concepts)


def test_icd10cm_names_attach_only_where_the_classifications_agree():
    from trainer.bank import agreeing_codes, attach_code

    dictionary = kcd_like(
        {
            "K74": ("간의 섬유증 및 경변증", "Fibrosis and cirrhosis of liver"),
            "K74.6": ("간의 기타 및 상세불명의 경변증", "Other and unspecified cirrhosis of liver"),
            "K74.60": ("차일드-퍼 A", "Other and unspecified cirrhosis of liver, Child-Pugh A"),
            "S06.1": ("외상성 뇌부종", "Traumatic cerebral oedema"),
        }
    )
    cm = {
        "K74.6": "Other and unspecified cirrhosis of liver",
        "K74.60": "Unspecified cirrhosis of liver",  # not KCD-8's Child-Pugh A
        "S06.1": "Traumatic cerebral edema",  # the same, in American spelling
    }
    agreeing = agreeing_codes(cm, dictionary)
    assert agreeing == {"K74", "K74.6", "S06.1"}
    assert attach_code("K74.60", agreeing) == "K74.6"
    assert attach_code("S06.1X0A", agreeing) == "S06.1"
    assert attach_code("K75.9", agreeing) is None


def test_icd10cm_names_read_descriptions_inclusion_terms_and_includes_notes(tmp_path):
    """An "includes" note names the category another way (B67 "hydatidosis"); one that
    points at codes or runs on describes the category's scope and is no name."""
    from trainer.bank import icd10cm_names

    xml = tmp_path / "tabular.xml"
    xml.write_text(
        "<ICD10CM.tabular><chapter><section>"
        "<diag><name>B67</name><desc>Echinococcosis</desc>"
        "<includes><note>hydatidosis</note><note>echinococcus infestation</note></includes>"
        "<diag><name>B67.0</name><desc>Echinococcus granulosus infection of liver</desc>"
        "<inclusionTerm><note>Hydatid cyst of liver, initial encounter</note></inclusionTerm></diag>"
        "</diag>"
        "<diag><name>I70.23</name><desc>Atherosclerosis of native arteries of right leg with ulceration</desc>"
        "<includes><note>any condition classifiable to I70.211 and I70.221</note></includes></diag>"
        "<diag><name>Y35</name><desc>Legal intervention</desc>"
        "<includes><note>any injury sustained as a result of an encounter with any law enforcement"
        " official, serving in any capacity at the time</note></includes></diag>"
        "</section></chapter></ICD10CM.tabular>",
        encoding="utf-8",
    )
    assert list(icd10cm_names(xml)) == [
        ("B67", "Echinococcosis"),
        ("B67", "hydatidosis"),
        ("B67", "echinococcus infestation"),
        ("B67.0", "Echinococcus granulosus infection of liver"),
        ("B67.0", "Hydatid cyst of liver"),
        ("I70.23", "Atherosclerosis of native arteries of right leg with ulceration"),
        ("Y35", "Legal intervention"),
    ]


def test_essential_form_drops_nonessential_modifiers():
    from trainer.bank import essential

    assert essential("Pernicious (congenital) anemia") == "Pernicious anemia"
    assert essential("Tuberculosis of meninges (cerebral)(spinal)") == "Tuberculosis of meninges"
    assert (
        essential("Bacterial enteritis, NOS") == essential("Bacterial enteritis NOS") == "Bacterial enteritis"
    )
    assert essential("단핵구증가(증)") == "단핵구증가"
    assert essential("Nosebleed") == "Nosebleed" and essential("Diagnosis NOSE") == "Diagnosis NOSE"
    assert essential("(NOS)") == ""


def test_a_neoplasm_subcode_named_by_its_site_lends_that_name_to_no_term_pair(tmp_path):
    """KCD-8 names C76.2 "Abdomen" (under "Malignant neoplasm of other and ill-defined sites"):
    a site, not the concept. Term pairs that name the abdomen (or, in the term table's noise,
    "배" = "bacterium") must not attach to the cancer through it; a subcode whose own name is a
    disease (N48.3 "Priapism" under "Other disorders of penis") still lends it."""
    from trainer.bank import _Names

    path = tmp_path / "kcd.tsv"
    path.write_text(
        "kcd\tko\ten\n"
        "C76\t기타 및 부위불명의 악성 신생물\tMalignant neoplasm of other and ill-defined sites\n"
        "C76.2\t복부\tAbdomen\n"
        "N48\t음경의 기타 장애\tOther disorders of penis\n"
        "N48.3\t지속발기\tPriapism\n",
        encoding="utf-8",
    )
    names = _Names(load_dictionary(path))
    assert names.get("abdomen") == set() and names.get("복부") == set()
    assert names.get("Malignant neoplasm of other and ill-defined sites - Abdomen") == {"C76.2"}
    assert names.get("priapism") == {"N48.3"} and names.get("지속발기") == {"N48.3"}


def test_built_bank_attaches_each_source_to_real_concepts(small_kcd):
    pytest.importorskip("simple_icd_10_cm")
    from trainer.bank import abbreviation_expansions, build_bank

    dictionary = load_dictionary(small_kcd)
    bank = build_bank(dictionary)
    counts = bank.counts()
    assert counts["icd10cm"] > 100 and counts["kmed"] > 0 and counts["translations"] > 1000
    own = {(c, normalize(t.text)) for c, t in dictionary.terms()}
    for row in bank.rows:
        assert row.code in dictionary.concepts and (row.code, normalize(row.term)) not in own
    cirrhosis = {r.term for r in bank.rows if r.code == "K74.6"}
    assert "Unspecified cirrhosis of liver" in cirrhosis  # ICD-10-CM K74.60, under the agreeing K74.6
    assert not [r for r in bank.rows if r.code == "K74.60" and "Unspecified" in r.term]
    # a Korean–English pair is attached where one side is a name the concept already has
    for row in (r for r in bank.rows if r.source == "kmed"):
        assert row.code in dictionary.concepts
    # ICD-10-CM's "Alcoholic cirrhosis NOS" is attached in its essential form too, and the
    # Korean–English pair of that form follows it instead of staying a translation pair
    attached = {(r.code, r.term, r.source) for r in bank.rows}
    assert ("K70.3", "Alcoholic cirrhosis", "icd10cm") in attached
    assert ("K70.3", "알코올간경화증", "kmed") in attached
    assert ("알코올간경화증", "alcoholic cirrhosis") not in bank.translations
    expansions = abbreviation_expansions(bank, dictionary)
    assert expansions and all(k.isalnum() and k == k.lower() for k in expansions)
    assert "all" not in expansions  # an ordinary English word is never rewritten


def test_bank_file_round_trip_and_search_loads_it(tmp_path):
    from trainer.bank import Bank, BankRow, write_bank

    bank = Bank(
        [
            BankRow("K74.6", "Cirrhosis (of liver) NOS", "en", "icd10cm"),
            BankRow("K74.6", "간경변", "ko", "kmed"),
        ],
        [("조충", "tapeworm")],
        {"x": "1"},
    )
    paths = write_bank(bank, tmp_path, expansions={"lc": "liver cirrhosis"})
    rows = read_bank(paths["bank"])
    assert rows == [("K74.6", "Cirrhosis (of liver) NOS", "icd10cm"), ("K74.6", "간경변", "kmed")]
    dictionary = kcd_like(
        {"K74.6": ("간의 기타 및 상세불명의 경변증", "Other and unspecified cirrhosis of liver")}
    )
    assert add_bank(dictionary, rows) == 2
    assert [t.source for t in dictionary.concepts["K74.6"].terms][-2:] == ["icd10cm", "kmed"]


def test_train_never_sees_held_out_codes_or_names_and_mixes_translations_and_typos(tiny_run):
    """What train() actually trained on (its train_pairs.tsv), from the outside."""
    from trainer.pairs import read_pairs
    from trainer.train import train

    config = tiny_run("bank", bank="true", translations="200", typos="0.3", max_steps="1", eval_every="0")
    result = train(config, progress=False)
    pairs = read_pairs(result.output / "train_pairs.tsv")
    dictionary = load_dictionary(config.dictionary)
    held_names = {normalize(t.text) for c, t in dictionary.terms() if held_out(c)}
    assert any(held_out(c) for c in dictionary.concepts)  # the fixture holds some out
    assert not [p for p in pairs if held_out(p.label)]
    assert not [p for p in pairs if p.sent0 in held_names or p.sent1 in held_names]
    bank_terms = {normalize(t) for c, t, _ in read_bank(__import__("assets").BANK)}
    assert any(p.sent0 in bank_terms or p.sent1 in bank_terms for p in pairs)
    assert sum(p.label.startswith("translation:") for p in pairs) >= 200  # typo variants add a few
    texts = {normalize(t.text) for _, t in dictionary.terms()} | bank_terms
    noisy = [p for p in pairs if not p.label.startswith("translation:") and p.sent0 not in texts]
    assert noisy  # typo variants, paired with the name they came from
    assert all(p.sent1 in texts for p in noisy)


def test_noisy_variants_change_one_jamo_or_letter():
    from core.text import decompose_hangul
    from trainer.augment import english_typo, korean_typo, spacing_variant

    rng = random.Random(0)
    for _ in range(200):
        variant = korean_typo("심근경색", rng)
        assert variant != "심근경색" and len(variant) == 4
        a, b = decompose_hangul("심근경색"), decompose_hangul(variant)
        assert sum(x != y for x, y in zip(a, b)) <= 2 or abs(len(a) - len(b)) == 1
        typo = english_typo("pneumonia", rng)
        assert typo != "pneumonia" and abs(len(typo) - len("pneumonia")) <= 1
    assert spacing_variant("급성 충수염", rng) == "급성충수염"
    assert korean_typo("asthma", rng) is None
