"""Markdown tables for the README from a benchmark results file, so every figure there is
copied from a results JSON rather than typed.

    python bench/tables.py bench/results/release-int8.json
"""

from __future__ import annotations

import json
import sys

KINDS = ("abbrev", "en", "ko-colloquial", "ko-formal", "mixed", "typo", "overall")


def cell(row: dict | None, *keys: str) -> str:
    if row is None:
        return "–"
    return " / ".join(f"{row[k]:.1f}" for k in keys)


def main(path: str) -> None:
    result = json.loads(open(path, encoding="utf-8").read())
    rows = result["quality"]
    print(
        f"Results: `{path}` (commit {result['machine']['git_commit'][:7]}"
        f"{', dirty tree' if result['machine'].get('git_dirty') else ''}; {result['machine']['cpu']}, "
        f"{result['machine']['cores']} cores)\n"
    )
    print("| model | ko2en | en2ko | mixed |\n| --- | --- | --- | --- |")
    for label, row in rows.items():
        if " w/o " in label:
            continue
        print(
            f"| {label} | "
            + " | ".join(cell(row[t], "acc1", "acc5", "mrr10") for t in ("ko2en", "en2ko", "mixed"))
            + " |"
        )
    for set_name in ("dev", "longtail"):
        print(f"\nDev set `{set_name}`, Acc@1 / Acc@5:\n")
        print("| search | " + " | ".join(KINDS) + " |\n|" + " --- |" * (len(KINDS) + 1))
        for label, row in rows.items():
            table = row["dev"].get(set_name, {}).get("by_kind", {})
            if table:
                print(f"| {label} | " + " | ".join(cell(table.get(k), "acc1", "acc5") for k in KINDS) + " |")
    print(
        "\nDev coverage:", json.dumps(result.get("dev_coverage")), "\nBank:", json.dumps(result.get("bank"))
    )
    print("Speed:", json.dumps(result.get("speed")))
    print("Confidence:", json.dumps(result.get("confidence")))


if __name__ == "__main__":
    main(sys.argv[1])
