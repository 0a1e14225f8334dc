"""Seeded fuzzers for the loaders and the query path (the reliability audit's methods, kept).

    python -m tests.fuzzing loaders --cases 10000     # mutated files of every format
    python -m tests.fuzzing queries --cases 10000     # generated queries through search()

A loader may return a dictionary or raise `DictionaryError`; anything else is a bug, and so is
a file cut off mid-line that loads. The tests run a few hundred cases of each; the commands
above run as many as asked and print the counts.
"""

from __future__ import annotations

import argparse
import logging
import random
import tempfile
from collections import Counter
from pathlib import Path

from core.dictionary import load_dictionary, read_synonyms
from core.errors import DictionaryError

KOSTOM_HEADER = "KOSTOM_CD\tKOSTOM_ID\tENG_NM\tKOR_NM\tCUI\tKCD_CD\n"
MRCONSO = "C0023890|ENG|P|L0023890|PF|S0000001|Y|A0000001||||MSH|MH|D008103|Liver Cirrhosis|0|N|256|\n"


def seeds() -> dict[str, tuple[str, bytes]]:
    """One small valid file per format: name → (format, bytes)."""
    kcd = "kcd\tko\ten\nK74\t간의 섬유증 및 경변증\tFibrosis and cirrhosis of liver\nK74.6\t간경변증\tCirrhosis\n"
    table = 'code,term,lang\nK74.6,liver cirrhosis,en\nK74.6,간경화,ko\nI10,"hypertension, essential",en\n'
    kostom = KOSTOM_HEADER + "H1\tH1\tLiver Cirrhosis\t간경화\tC0023890\tK74.6\nH2\tH2\tAsthma\t천식\t\tJ45\n"
    return {
        "kcd.tsv": ("kcd", kcd.encode()),
        "terms.csv": ("table", table.encode()),
        "kostom.txt": ("kostom", kostom.encode("cp949")),
        "MRCONSO.RRF": ("mrconso", (MRCONSO * 3).encode()),
        "synonyms.tsv": ("synonyms", "code\tterm\nK74.6\tLC\nI10\tHTN\n".encode()),
    }


_NOISE = [
    b"\r",
    b"\n",
    b"\r\n",
    b"\t",
    b",",
    b'"',
    b"|",
    b"\x00",
    b"\xff",
    b"\xed\xa0\x80",
    "간".encode(),
    b" ",
]


def mutate(data: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(7)
    i = rng.randrange(len(data) + 1)
    if kind == 0:  # cut off
        return data[:i]
    if kind == 1:  # noise inserted
        return data[:i] + b"".join(rng.choice(_NOISE) for _ in range(rng.randint(1, 4))) + data[i:]
    if kind == 2:  # a range deleted
        return data[:i] + data[i + rng.randint(1, 20) :]
    if kind == 3:  # a range repeated
        return data[:i] + data[max(0, i - 30) : i] + data[i:]
    if kind == 4:  # line endings changed
        return data.replace(b"\n", rng.choice([b"\r", b"\r\n", b"\n\n"]))
    if kind == 5:  # an enormous field
        return data[:i] + b"x" * rng.choice([1000, 200_000]) + data[i:]
    return bytes(b ^ 0x20 if rng.random() < 0.02 else b for b in data)  # bits flipped


def fuzz_loaders(cases: int, *, seed: int = 0) -> Counter:
    """Counts of outcomes: `loaded`, `refused`, `crashed` (a non-DictionaryError) and
    `truncated_loaded` (a file ending mid-line that loaded)."""
    rng = random.Random(seed)
    base = seeds()
    counts: Counter = Counter()
    with tempfile.TemporaryDirectory() as scratch:
        for case in range(cases):
            name = rng.choice(sorted(base))
            fmt, data = base[name]
            mutated = mutate(data, rng)
            path = Path(scratch) / f"{case % 50}-{name}"
            path.write_bytes(mutated)
            try:
                if fmt == "synonyms":
                    read_synonyms(path)
                else:
                    load_dictionary(path, fmt)
            except DictionaryError:
                counts["refused"] += 1
                continue
            except Exception as exc:  # noqa: BLE001 - counting what escapes is the point
                counts["crashed"] += 1
                counts[f"crashed: {type(exc).__name__}: {str(exc)[:80]}"] += 1
                continue
            counts["loaded"] += 1
            if mutated and not mutated.endswith((b"\n", b"\r")):
                counts["truncated_loaded"] += 1
    return counts


_ALPHABETS = [
    "abcdefghijklmnopqrstuvwxyz ",
    "가나다라마바사아자차카타파하간경화천식 ",
    "ㄱㄴㄷㅏㅓㅗㅜ",
    "0123456789.-/",
    "😀🩺🏥",
    "\x00\x01\x0b\x0c\x1b\x7f\u2028\u0085\ufeff",
    "\ud800\udfff",
    "<>&%$#@!?'\"`~",
]


def random_query(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.03:
        return ""
    if kind < 0.05:
        return rng.choice(_ALPHABETS[1]) * (1 << 20)  # 1 MB
    alphabet = "".join(rng.sample(_ALPHABETS, rng.randint(1, 3)))
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))


def fuzz_queries(searcher, cases: int, *, seed: int = 0) -> Counter:
    rng = random.Random(seed)
    counts: Counter = Counter()
    for _ in range(cases):
        query = random_query(rng)
        try:
            searcher.search(query, 5)
            counts["answered"] += 1
        except Exception as exc:  # noqa: BLE001
            counts["crashed"] += 1
            counts[f"crashed: {type(exc).__name__}: {str(exc)[:80]}"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzzing", description=__doc__)
    parser.add_argument("target", choices=["loaders", "queries"])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the loaders' warnings about skipped rows, thousands of them
    if args.target == "loaders":
        counts = fuzz_loaders(args.cases, seed=args.seed)
    else:
        from core.search import open_searcher

        counts = fuzz_queries(open_searcher(), args.cases, seed=args.seed)
    for key, value in sorted(counts.items()):
        print(f"{value:>7}  {key}")


if __name__ == "__main__":
    main()
