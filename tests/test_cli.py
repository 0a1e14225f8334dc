"""Each command line's happy path and one error path (in-process: the same `main` the scripts call)."""

from __future__ import annotations

import json
import shutil

import pytest


def test_core_index_build_and_prebuild(small_kcd, tiny_bundle, cache, tmp_path, capsys):
    from core.__main__ import main

    assert main(["index", "build", "--dictionary", str(small_kcd), "--model", str(tiny_bundle)]) == 0
    assert "index ready" in capsys.readouterr().out
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    assert main(["index", "prebuild", "--dictionary", str(small_kcd), "--model", str(bundle)]) == 0
    assert (bundle / "prebuilt.npz").is_file()
    assert (
        main(["index", "build", "--dictionary", str(tmp_path / "missing.tsv"), "--model", str(bundle)]) == 2
    )
    assert "missing.tsv: no such file" in capsys.readouterr().err


def test_trainer_pairs_and_its_errors(small_kcd, tmp_path, capsys):
    pytest.importorskip("torch")
    from trainer.__main__ import main
    from trainer.pairs import read_pairs

    out = tmp_path / "pairs.tsv"
    assert main(["pairs", "--dictionary", str(small_kcd), "--out", str(out)]) == 0
    pairs = read_pairs(out)
    assert pairs and "pairs from" in capsys.readouterr().out
    assert main(["pairs", "--dictionary", str(tmp_path / "none.tsv"), "--out", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_trainer_eval_and_release_resume_without_a_run(tiny_checkpoint, small_kcd, tmp_path, capsys):
    pytest.importorskip("torch")
    from trainer.__main__ import main

    table = tmp_path / "eval.json"
    args = ["eval", "--checkpoint", str(tiny_checkpoint), "--no-base", "--dictionary", str(small_kcd)]
    assert main([*args, "--json", str(table)]) == 0
    rows = json.loads(table.read_text())
    assert set(rows["checkpoint"]) == {"ko2en", "en2ko", "mixed"}
    assert main(["eval", "--checkpoint", str(tmp_path / "nothing"), "--no-base"]) == 2
    capsys.readouterr()
    assert main(["release", "--output", str(tmp_path / "never"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_release_bundle_stores_a_vector_for_every_searched_name_and_reports_progress(
    tiny_checkpoint, cache, tmp_path
):
    pytest.importorskip("torch")
    from core.index import load_prebuilt
    from trainer.release import export_release_bundle

    told = []
    out = tmp_path / "bundle"
    manifest, searcher = export_release_bundle(
        tiny_checkpoint,
        out,
        max_length=24,
        scratch=tmp_path,
        progress=lambda done, total: told.append((done, total)) or True,
    )
    texts = searcher.table.texts
    assert manifest.parity["n"] == 500 and len(texts) > 100_000  # KCD-8, curated list and bank
    assert told and told[-1] == (len(texts), len(texts))  # the release's longest silent step
    vectors, found = load_prebuilt(out, texts)
    assert found.all() and vectors.shape == (len(texts), searcher.index.vectors().shape[1])


def test_export_onnx_and_a_missing_checkpoint(tiny_checkpoint, tmp_path, capsys):
    pytest.importorskip("torch")
    from export.__main__ import export_onnx_main

    out = tmp_path / "bundle"
    assert export_onnx_main([str(tiny_checkpoint), "--out", str(out), "--max-length", "24"]) == 0
    assert (out / "manifest.json").is_file() and "parity min" in capsys.readouterr().out
    assert export_onnx_main([str(tmp_path / "nothing"), "--out", str(tmp_path / "b2")]) == 2
    assert not (tmp_path / "b2").exists()


def test_core_calibrate_stores_the_fit_in_the_bundle_and_writes_its_report(
    small_kcd, tiny_bundle, cache, tmp_path, capsys
):
    from core.__main__ import main
    from core.bundle import read_manifest
    from core.confidence import FILE, Calibration

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    assert not (bundle / FILE).exists()
    args = ["calibrate", "--dictionary", str(small_kcd), "--model", str(bundle), "--queries", "60"]
    assert main([*args, "--report", str(tmp_path / "report.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "report.json").read_text())
    # --queries 60: 60 names (every other one searched hidden) and 60 random strings
    assert printed["queries"]["hidden"] == 30 and 30 < printed["queries"]["nonsense"] <= 60
    assert len(printed["reliability"]) == 10
    assert FILE in read_manifest(bundle).files and Calibration.load(bundle) is not None
    assert json.loads((bundle / FILE).read_text())["report"] == printed  # kept beside the fit
    assert main([*args[:-4], "--model", str(tmp_path / "no-bundle")]) == 2
    assert "no-bundle" in capsys.readouterr().err


def test_core_bench_smoke_run_on_a_small_kcd_and_a_missing_query_file(
    small_kcd, tiny_bundle, cache, tmp_path, capsys, monkeypatch
):
    from core.__main__ import main
    from core.bench import bundle_digest
    from core.dictionary import load_dictionary
    from core.search import TermTable, load_searched

    dev, longtail = tmp_path / "dev.tsv", tmp_path / "longtail.tsv"
    dev.write_text(
        "query\taccept\tkind\n급성 충수염\tK35\tko-formal\nhepatic fibrosis\tK74.0\ten\n", encoding="utf-8"
    )
    longtail.write_text(
        "query\taccept\tkind\n알코올성 간염\tK70.1\tko-formal\nscarring of the liver\tK74\ten\n",
        encoding="utf-8",
    )
    common = ["bench", "--kcd", str(small_kcd), "--model", str(tiny_bundle), "--results", str(tmp_path)]
    common += ["--dev-queries", str(dev), "--longtail-queries", str(longtail), "--no-build"]
    assert main([*common, "--name", "smoke", "--baseline", f"again={tiny_bundle}", "--ablate-bank"]) == 0
    result = json.loads((tmp_path / "smoke.json").read_text())
    # the bank joins the KCD-8 only: on a subset, each bundle without it answers as with it
    for label in ("model", "again"):
        assert result["quality"].pop(f"{label} w/o bank") == result["quality"][label]
    assert result["model_sha256"] == bundle_digest(tiny_bundle)
    assert result["baselines"] == {"again": {"path": str(tiny_bundle), "sha256": bundle_digest(tiny_bundle)}}
    assert result["dictionary"]["fingerprint"] == load_dictionary(small_kcd).fingerprint()
    assert set(result["quality"]) == {"model", "again", "lexical"}
    assert result["quality"]["model"] == result["quality"]["again"]  # the same bundle measures the same
    overall = result["quality"]["lexical"]["dev"]["dev"]["by_kind"]["overall"]
    assert overall["n"] == 2 and result["quality"]["model"]["ko2en"]["n"] > 0
    assert result["speed"]["p50_ms"] > 0 and "git_dirty" in result["machine"]
    capsys.readouterr()
    assert main([*common, "--name", "broken", "--longtail-queries", str(tmp_path / "none.tsv")]) == 2
    assert "none.tsv: no such file" in capsys.readouterr().err
    assert main([*common, "--name", "broken", "--baseline", str(tiny_bundle)]) == 2
    assert "expected LABEL=DIR" in capsys.readouterr().err
    dev.write_text(
        "query\taccept\tkind\n급성 충수염\tK35\tko-formal\nhepatic fibrosis K74.0\ten\n", encoding="utf-8"
    )
    assert main([*common, "--name", "broken"]) == 2
    assert (
        "dev.tsv:3: expected 3 tab-separated columns (query, accept, kind), found 2"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "broken.json").exists()
    # a default query file that is not there (a user's machine without ../shared) is skipped, and said;
    # in build mode (no --no-build) a first launch on an empty cache is timed, and the index
    # built from the bundle's vectors and by embedding every name, each over the KCD measured
    monkeypatch.setattr("core.bench.LONGTAIL_QUERIES", tmp_path / "absent.tsv")
    dev.write_text("query\taccept\tkind\n급성 충수염\tK35\tko-formal\n", encoding="utf-8")
    without = [a for a in common if a not in ("--longtail-queries", str(longtail), "--no-build")]
    assert main([*without, "--name", "partial", "--speed-only"]) == 0
    out, err = capsys.readouterr()
    assert f"longtail: {tmp_path / 'absent.tsv'} not found, skipped" in err
    partial = json.loads((tmp_path / "partial.json").read_text())
    assert partial["dev_skipped"] == {"longtail": str(tmp_path / "absent.tsv")}
    speed, names = partial["speed"], len(TermTable(list(load_searched(small_kcd).terms())))
    assert speed["index_build_names"] == speed["index_build_prebuilt_names"] == names
    for key in ("first_launch_s", "first_launch_peak_rss_mb", "index_build_prebuilt_s"):
        assert speed[key] > 0, key
    assert speed["index_build_embed_s"] > 0
    assert f"prebuilt vectors ({names} names)" in out and f"embedding all {names} names" in out


def test_search_table_has_a_header_for_every_column_and_aligns_hangul(small_kcd, tiny_bundle, cache, capsys):
    """The table's header named no level column (so every name sat under the wrong heading),
    and a Hangul syllable, two columns wide in a terminal, was padded as one."""
    import unicodedata

    from core.__main__ import main
    from core.dictionary import load_dictionary

    query = "간의 기타 및 상세불명의 경변증"
    assert (
        main(["search", "--dictionary", str(small_kcd), "--model", str(tiny_bundle), "-k", "3", query]) == 0
    )
    header, *rows, legend = capsys.readouterr().out.splitlines()[1:]
    assert header.split()[:6] == ["#", "code", "score", "match", "level", "Korean"]
    assert [row.split()[0] for row in rows] == ["1", "2", "3"]  # -k 3
    # a code with more specific codes under it is marked, as in the app, and the mark explained
    dictionary = load_dictionary(small_kcd)
    for row in rows:
        code, mark = row.split()[1:3]
        assert (mark == "▸") == bool(dictionary.children(code)), row
    assert rows[0].split()[1:3] == ["K74.6", "▸"]
    assert legend.strip().startswith("▸ not the most specific level")

    def width(text: str) -> int:  # terminal columns: a Hangul syllable takes two
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    korean, english = header.index("Korean"), width(header[: header.index("English")])
    for row in rows:  # (ASCII up to the Korean name: characters are columns there)
        assert row[korean - 1] == " " and "가" <= row[korean] <= "힣"  # (the tiny bundle has no level)
        assert width(row[: row.index("[")]) >= english
    first = rows[0]
    assert "K74.6" in first and width(first[: first.index("Other")]) == english


def test_core_map_and_map_export_in_process(small_kcd, tiny_bundle, cache, tmp_path, capsys):
    """`map` suggests for every row and reports the project; `map export` writes it out; a
    missing term list and an `index` without its subcommand are refused (the subprocess test
    in test_mapping.py is out of reach of mutation runs)."""
    from core.__main__ import main
    from core.mapping import MappingProject
    from tests.conftest import kcd_subset

    terms = tmp_path / "terms.txt"
    terms.write_text("간경화\nhepatic fibrosis\n급성 충수염\n", encoding="utf-8")
    project = tmp_path / "terms.map"
    args = ["map", str(terms), "--out", str(project), "--model", str(tiny_bundle)]
    assert main([*args, "--dictionary", str(small_kcd), "-k", "3"]) == 0
    (line,) = capsys.readouterr().out.splitlines()  # standard output is the report alone
    report = json.loads(line)
    assert report["project"] == str(project) and report["rows"] == 3 and report["suggested_now"] == 3
    assert 0 <= report["seconds"] < 600
    mapping = MappingProject(project)
    assert [len(row.suggestions) for row in mapping.rows()] == [3, 3, 3]
    mapping.close()
    # continued with another dictionary: the note goes to standard error, the report alone out
    other = kcd_subset(tmp_path / "other.tsv", prefixes=("K74", "K35"))
    assert main([*args, "--dictionary", str(other)]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 and json.loads(out)["suggested_now"] == 0
    assert "continuing (3 rows)" in err and "note: the dictionary or model changed" in err
    exported = tmp_path / "rows.csv"
    assert main(["map", "export", str(project), "--format", "csv", "--out", str(exported)]) == 0
    assert "wrote 3 rows" in capsys.readouterr().err and len(exported.read_text().splitlines()) == 4
    assert main(["map", str(tmp_path / "none.csv"), "--out", str(tmp_path / "x.map")]) == 2
    assert "none.csv" in capsys.readouterr().err and not (tmp_path / "x.map").exists()
    with pytest.raises(SystemExit) as refused:
        main(["index"])
    assert refused.value.code == 2 and "required" in capsys.readouterr().err


def test_search_batch_in_process_answers_each_line_with_its_verdict(
    small_kcd, tiny_bundle, cache, tmp_path, capsys
):
    """The subprocess test in test_reliability.py covers encodings; this one, run in process,
    is within reach of mutation runs: one JSON line per query line, each with its verdict."""
    from core.__main__ import main

    batch = tmp_path / "queries.txt"
    batch.write_text("K74.6\n\nK99.99\n", encoding="utf-8")
    args = ["search", "--dictionary", str(small_kcd), "--model", str(tiny_bundle), "-k", "2"]
    assert main([*args, "--batch", str(batch)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["query"] for row in rows] == ["K74.6", "", "K99.99"]
    assert [row["verdict"] for row in rows] == [None, None, "code not found"]
    assert [len(row["results"]) for row in rows] == [2, 0, 2]
    assert rows[0]["results"][0]["code"] == "K74.6"
    batch.write_text("간경화\nliver cirrhosis\n", encoding="utf-8")
    assert main([*args, "-k", "5", "--within", "I10-I25", "--batch", str(batch)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    codes = [hit["code"] for row in rows for hit in row["results"]]
    assert codes and all(code[:3] in ("I10", "I21") for code in codes)  # none of K74's, for either
    assert main([*args, "--json", "K74.6", "K99.99"]) == 0  # queries given on the command line
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["query"], line["verdict"]) for line in lines] == [
        ("K74.6", None),
        ("K99.99", "code not found"),
    ]


def test_map_export_names_targets_from_the_dictionary_the_project_was_suggested_from(
    tiny_bundle, cache, tmp_path, capsys
):
    from core.__main__ import main
    from core.mapping import MappingProject

    table = tmp_path / "local.csv"
    table.write_text("code,term\nK74.6,stiff liver\nK35,sore appendix\n", encoding="utf-8")
    terms = tmp_path / "terms.txt"
    terms.write_text("hardened liver\n", encoding="utf-8")
    project = tmp_path / "p.map"
    assert (
        main(
            [
                "map",
                str(terms),
                "--out",
                str(project),
                "--dictionary",
                str(table),
                "--model",
                str(tiny_bundle),
            ]
        )
        == 0
    )
    mapping = MappingProject(project)
    mapping.decide(1, status="approved", targets=["K74.6"])
    mapping.close()
    exported = tmp_path / "out.csv"
    assert (
        main(["map", "export", str(project), "--out", str(exported)]) == 0
    )  # no --dictionary: the project's
    text = exported.read_text(encoding="utf-8-sig")
    assert "stiff liver" in text and "cirrhosis" not in text  # not the bundled KCD-8's name of K74.6


def test_verbose_flag_sets_the_log_level(tmp_path, capsys, monkeypatch):
    """`-v` shows the INFO lines (what is loaded, cached, built); without it, warnings only.
    pytest's own handlers keep `basicConfig` from acting, so the root starts bare here."""
    import logging

    from core.__main__ import main

    missing = ["map", str(tmp_path / "none.csv"), "--out", str(tmp_path / "x.map")]
    for flags, level in ((["-v"], logging.INFO), ([], logging.WARNING)):
        monkeypatch.setattr(logging.root, "handlers", [])
        monkeypatch.setattr(logging.root, "level", logging.ERROR)
        assert main([*flags, *missing]) == 2
        assert logging.root.level == level, flags
    capsys.readouterr()


def test_map_export_reads_the_dictionary_in_the_format_forced_at_map(tiny_bundle, cache, tmp_path, capsys):
    """A KOSTOM file named .tsv is detected as a code/term table: `map --format kostom` reads
    it right, and `map export` (no --format) must read it the same way, not detect it again."""
    from core.__main__ import main
    from core.dictionary import detect_format, load_dictionary
    from core.mapping import MappingProject
    from tests.fuzzing import KOSTOM_HEADER

    kostom = tmp_path / "local.tsv"
    rows = "H1\tH1\tStiff Liver\t굳은 간\tC0023890\tK74.6\nH2\tH2\tSore Appendix\t아픈 맹장\t\tK35\n"
    kostom.write_bytes((KOSTOM_HEADER + rows).encode("cp949"))
    assert detect_format(kostom) == "table"
    terms = tmp_path / "terms.txt"
    terms.write_text("hardened liver\n", encoding="utf-8")
    project = tmp_path / "p.map"
    args = ["map", str(terms), "--out", str(project), "--dictionary", str(kostom), "--format", "kostom"]
    assert main([*args, "--model", str(tiny_bundle)]) == 0
    mapping = MappingProject(project)
    (row,) = mapping.rows()
    target = row.suggestions[0].code
    mapping.decide(row.id, status="approved", targets=[target])
    mapping.close()
    exported = tmp_path / "out.csv"
    assert main(["map", "export", str(project), "--out", str(exported)]) == 0, capsys.readouterr().err
    name = load_dictionary(kostom, "kostom").concepts[target].name("en")
    assert name in ("Stiff Liver", "Sore Appendix") and name in exported.read_text(encoding="utf-8-sig")
