"""A seeded uniform sample of the configured mutants, and the mutation score it estimates.

Running all ~10,700 mutants of the configured modules takes days on a 2-core machine (20 to 60 s
a mutant); the killed share of a uniform random sample estimates the whole set's score, with a
95 % (Wilson) interval. The same seed and size give the same sample only while the set of
mutants is the same (a code change adds or renumbers mutants), so keep the drawn names and
score them from that file.

    mutmut run "core.errors*"                                   # once: generates mutants/
    python bench/mutation_sample.py --size 100 > sample.txt     # draw the sample
    mutmut run $(cat sample.txt)                                # run it
    python bench/mutation_sample.py --score --names sample.txt  # its score, per module

mutmut keeps a mutant's result from an earlier run (another sample's, a partial run, older
tests): `--reset --names sample.txt` clears the named mutants' results first, so that the
next `mutmut run` runs each of them against today's tests.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections import Counter
from pathlib import Path

MUTANTS = Path(__file__).resolve().parents[1] / "mutants"


def mutant_results(mutants: Path = MUTANTS) -> dict[str, int | None]:
    """Every generated mutant's name and its exit code (None: not run yet), from mutmut's
    `.meta` files."""
    results: dict[str, int | None] = {}
    for meta in sorted(mutants.rglob("*.meta")):
        results.update(json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"])
    return results


def reset(names: set[str], mutants: Path = MUTANTS) -> int:
    """Clear the results of the named mutants in mutmut's `.meta` files (mutmut then runs them
    again); returns how many were cleared."""
    cleared = 0
    for meta in sorted(mutants.rglob("*.meta")):
        data = json.loads(meta.read_text(encoding="utf-8"))
        hit = names & data["exit_code_by_key"].keys()
        if hit:
            data["exit_code_by_key"].update(dict.fromkeys(hit))
            meta.write_text(json.dumps(data), encoding="utf-8")
            cleared += len(hit)
    return cleared


def sample(names: list[str], size: int, seed: int) -> list[str]:
    return sorted(random.Random(seed).sample(sorted(names), min(size, len(names))))


def wilson(killed: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion."""
    if total == 0:
        return 0.0, 1.0
    p = killed / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return centre - half, centre + half


def score(results: dict[str, int | None], chosen: list[str]) -> str:
    """The sample's killed / run, per module and in all, with the interval and the survivors."""
    from mutmut.stats import status_by_exit_code

    status = {name: status_by_exit_code[results[name]] for name in chosen}
    module = {name: name.split(".x")[0] for name in chosen}
    run, killed = Counter(), Counter()
    for name, state in status.items():
        if state != "not checked":
            run[module[name]] += 1
            killed[module[name]] += state in ("killed", "caught by type check", "timeout")
    lines = [f"{m:<28} {killed[m]:>3} / {run[m]:<3}" for m in sorted(run)]
    low, high = wilson(sum(killed.values()), sum(run.values()))
    lines.append(
        f"{'all':<28} {sum(killed.values()):>3} / {sum(run.values()):<3} "
        f"(95 % interval {100 * low:.0f}–{100 * high:.0f} %; {len(chosen) - sum(run.values())} not run)"
    )
    lines += [
        f"  {state}: {name}" for name, state in status.items() if state not in ("killed", "not checked")
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--score", action="store_true", help="the sample's score instead of its names")
    parser.add_argument("--names", help="score the mutants named in this file (one a line), not a new draw")
    parser.add_argument("--reset", action="store_true", help="clear the --names mutants' earlier results")
    args = parser.parse_args()
    results = mutant_results()
    if not results:
        raise SystemExit(f"{MUTANTS}: no mutants generated yet (run mutmut once)")
    named = Path(args.names).read_text(encoding="utf-8").split() if args.names else None
    if args.reset:
        if named is None:
            raise SystemExit("--reset needs --names FILE")
        print(f"cleared {reset(set(named))} results")
        return
    if named is not None:
        chosen = named
        results = {name: results.get(name) for name in chosen}  # one no longer generated: not run
    else:
        chosen = sample(list(results), args.size, args.seed)
    print(score(results, chosen) if args.score else "\n".join(chosen))


if __name__ == "__main__":
    main()
