import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")  # without the train extra these tests are skipped, not broken

from core.dictionary import load_dictionary  # noqa: E402
from core.evaluation import held_out  # noqa: E402
from core.text import normalize  # noqa: E402
from tests.test_dictionary import write_kostom  # noqa: E402
from trainer.config import resolve_config  # noqa: E402
from trainer.loss import RECIPES, LossConfig, MultiSimilarityLoss, multi_similarity_loss  # noqa: E402
from trainer.pairs import Pair, make_pairs, read_pairs, translation_pairs, write_pairs  # noqa: E402


def unit(*rows):
    t = torch.tensor(rows, dtype=torch.float32)
    return t / t.norm(dim=1, keepdim=True)


def test_loss_matches_the_formula_on_a_hand_made_batch():
    # two concepts, two terms each; similarities chosen by hand
    e = unit([1, 0], [0.8, 0.6], [0, 1], [-0.6, 0.8])
    labels = torch.tensor([0, 0, 1, 1])
    cfg = LossConfig(threshold=0.5, scale_pos=2.0, scale_neg=10.0, margin=0.0, mining=False)
    sim = e @ e.T
    expected = 0.0
    for i in range(4):
        pos = [j for j in range(4) if j != i and labels[j] == labels[i]]
        neg = [j for j in range(4) if labels[j] != labels[i]]
        expected += math.log1p(sum(math.exp(-2.0 * (sim[i, j] - 0.5)) for j in pos)) / 2.0
        expected += math.log1p(sum(math.exp(10.0 * (sim[i, j] - 0.5)) for j in neg)) / 10.0
    assert multi_similarity_loss(e, labels, cfg).item() == pytest.approx(expected / 4, rel=1e-5)


def test_perfect_separation_costs_less_than_confusion():
    labels = torch.tensor([0, 0, 1, 1])
    good = multi_similarity_loss(unit([1, 0], [1, 0.01], [0, 1], [0.01, 1]), labels, RECIPES["sapbert"])
    bad = multi_similarity_loss(unit([1, 0], [0, 1], [1, 0.01], [0.01, 1]), labels, RECIPES["sapbert"])
    assert good < bad


def test_mining_keeps_only_hard_pairs():
    # anchor 0: positive at cos 0.99 (easy), negative at cos 0 (easy) -> nothing kept for it
    e = unit([1, 0], [1, 0.1], [0, 1], [0.1, 1])
    labels = torch.tensor([0, 0, 1, 1])
    mined = multi_similarity_loss(e, labels, LossConfig(margin=0.1, mining=True))
    assert mined.item() == 0.0
    unmined = multi_similarity_loss(e, labels, LossConfig(margin=0.1, mining=False))
    assert unmined.item() > 0


def test_equal_labels_are_never_negatives():
    # the same text under the same label twice: only a positive, so no push apart
    e = unit([1, 0], [1, 0])
    loss = multi_similarity_loss(e.requires_grad_(), torch.tensor([3, 3]), LossConfig(mining=False))
    loss.backward()
    assert loss.item() == pytest.approx(math.log1p(math.exp(-(1 - 0.8))), rel=1e-5)


def _reference_loss(e, labels, cfg):
    """The multi-similarity loss written pair by pair, as the paper states it."""
    sim = (e @ e.T).tolist()
    n, per_anchor = len(labels), []
    for i in range(n):
        pos = [j for j in range(n) if j != i and labels[j] == labels[i]]
        neg = [j for j in range(n) if labels[j] != labels[i]]
        if cfg.mining:
            hardest_neg = max((sim[i][j] for j in neg), default=-math.inf)
            weakest_pos = min((sim[i][j] for j in pos), default=math.inf)
            pos = [j for j in pos if sim[i][j] - cfg.margin < hardest_neg]
            neg = [j for j in neg if sim[i][j] + cfg.margin > weakest_pos]
        if pos or neg:
            a, b, lam = cfg.scale_pos, cfg.scale_neg, cfg.threshold
            p = math.log1p(sum(math.exp(-a * (sim[i][j] - lam)) for j in pos)) / a
            q = math.log1p(sum(math.exp(b * (sim[i][j] - lam)) for j in neg)) / b
            per_anchor.append(p + q)
    return sum(per_anchor) / len(per_anchor) if per_anchor else 0.0


@pytest.mark.parametrize("mining", [True, False])
def test_loss_equals_the_pair_by_pair_formula_on_random_batches(mining):
    generator = torch.Generator().manual_seed(7)
    # groups of different sizes, a singleton (no positive) and a random layout: per-row mining
    # thresholds differ from per-column ones, and some anchors keep no pair
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 4])
    cfg = LossConfig(threshold=0.6, scale_pos=2.0, scale_neg=20.0, margin=0.15, mining=mining)
    for _ in range(5):
        e = torch.nn.functional.normalize(
            torch.randn(len(labels), 6, generator=generator, dtype=torch.float64), dim=1
        )
        expected = _reference_loss(e, labels.tolist(), cfg)
        assert multi_similarity_loss(e, labels, cfg).item() == pytest.approx(expected, rel=1e-9)
        assert MultiSimilarityLoss(cfg)(e, labels).item() == pytest.approx(expected, rel=1e-6)


def test_loss_config_rejects_each_bad_parameter_and_says_which():
    for bad in ({"scale_pos": 0.0}, {"scale_neg": 0.0}, {"scale_pos": -1.0}):
        with pytest.raises(ValueError, match=r"scales must be positive, got -?\d"):
            LossConfig(**bad)
    with pytest.raises(ValueError, match=r"margin must be >= 0, got -0.1"):
        LossConfig(margin=-0.1)
    LossConfig(scale_pos=0.5, scale_neg=0.5, margin=0.0)  # small but positive is valid


def test_loss_recipe_is_validated_and_overridable():
    config = resolve_config(preset="tiny", overrides={"loss": "sapbert", "margin": "0.3"})
    assert config.loss_config() == LossConfig(threshold=0.5, scale_pos=1.0, scale_neg=60.0, margin=0.3)
    with pytest.raises(ValueError, match="choose one of reference, sapbert"):
        resolve_config(overrides={"loss": "triplet"})
    with pytest.raises(ValueError, match="unknown config key 'bach_size'"):
        resolve_config(overrides={"bach_size": "3"})
    assert resolve_config(preset="tiny", overrides={"batching": "siblings"}).batching == "siblings"
    with pytest.raises(ValueError, match="batching 'sibling': choose one of random, siblings, half-siblings"):
        resolve_config(overrides={"batching": "sibling"})


def test_pairs_follow_the_reference_rules(tmp_path):
    path = write_kostom(
        tmp_path / "kostom.txt",
        [
            ["H1", "H1", "Liver Cirrhosis", "간경화", "C0023890", ""],
            ["H2", "H2", "Cirrhosis, liver", "간경변증", "C0023890", ""],
            ["H3", "H3", "n/a", "null", "C0000001", ""],
            ["H4", "H4", "spleen and stomach dampness-heat pattern", "비위습열증", "", ""],
            ["H5", "H5", "Bell's palsy", "벨마비", "C0376175", ""],
        ]
        + [[f"H{i}", f"H{i}", f"term {i}", f"용어 {i}", "C0009999", ""] for i in range(6, 20)],
    )
    dictionary = load_dictionary(path)
    pairs = make_pairs(dictionary, max_pairs=50, seed=42)
    by_label = {}
    for p in pairs:
        by_label.setdefault(p.label, []).append(p)
    assert len(by_label["C0023890"]) == 6  # 4 terms -> C(4,2)
    assert ("liver cirrhosis", "간경화") in {(p.sent0, p.sent1) for p in by_label["C0023890"]} | {
        (p.sent1, p.sent0) for p in by_label["C0023890"]
    }
    assert "C0000001" not in by_label  # n/a / null dropped
    assert by_label["H4"][0].sent0 in ("spleen and stomach dampness-heat pattern", "비위습열증")
    assert {p.sent0 for p in by_label["C0376175"]} | {p.sent1 for p in by_label["C0376175"]} == {
        "bells palsy",
        "벨마비",
    }
    assert len(by_label["C0009999"]) == 50  # 28 terms -> 378 pairs, down-sampled
    assert make_pairs(dictionary, seed=42) == pairs  # seeded
    write_pairs(pairs, tmp_path / "pairs.tsv")
    assert (tmp_path / "pairs.tsv").read_text().startswith("sent0\tsent1\tlabel\n")
    assert read_pairs(tmp_path / "pairs.tsv") == pairs
    # a pair file with a column of its own (a note, a source) reads as the three it needs
    (tmp_path / "noted.tsv").write_text("sent0\tsent1\tlabel\tnote\n간경화\tliver cirrhosis\tK74.6\tx\n")
    assert read_pairs(tmp_path / "noted.tsv") == [Pair("간경화", "liver cirrhosis", "K74.6")]


def test_translation_pairs_are_normalised_deduplicated_and_never_excluded_texts():
    rows = [
        ("ko", "en"),  # a header row
        ("간경화", "Liver Cirrhosis"),
        ("간경화", "liver  cirrhosis"),  # the same pair once normalised
        ("충수염", "appendicitis"),  # its Korean side is excluded
        ("폐렴", "pneumonia"),  # its English side is excluded
        ("", "empty"),
        ("빈칸", ""),
        ("liver", "간"),  # the sides swapped: Korean must be Korean, English English
        ("liver", "cirrhosis"),  # English on both sides
        ("간", "간경화"),  # Korean on both sides
        ("대상포진", "herpes zoster"),
    ]
    pairs = translation_pairs(rows, exclude={"충수염", "pneumonia"})
    assert pairs == [
        Pair("간경화", "liver cirrhosis", "translation:liver cirrhosis"),
        Pair("대상포진", "herpes zoster", "translation:herpes zoster"),
    ]


def test_kcd_training_pairs_never_contain_held_out_codes():
    from trainer.train import load_training_dictionary, split_rule

    config = resolve_config(preset="offline")
    dictionary, is_kcd = load_training_dictionary(config)
    rule = split_rule(is_kcd)
    pairs = make_pairs(dictionary, include=lambda code: not rule(code))
    assert is_kcd and rule is held_out
    assert pairs and not any(held_out(p.label) for p in pairs)
    held_names = {
        t.text.lower() for c in dictionary.concepts if held_out(c) for t in dictionary.concepts[c].terms
    }
    assert len([c for c in dictionary.concepts if held_out(c)]) == 2162
    # no held-out concept's own name sneaks in under another code's label either
    only_held = held_names - {
        t.text.lower() for c in dictionary.concepts if not held_out(c) for t in dictionary.concepts[c].terms
    }
    texts = {p.sent0 for p in pairs} | {p.sent1 for p in pairs}
    assert not {t for t in only_held if t in texts}


def test_batches_are_label_aware_and_deterministic():
    from trainer.pairs import Pair
    from trainer.train import Batches

    pairs = [Pair(f"a{i}", f"b{i}", f"C{i % 3}") for i in range(10)]
    ids = {t: [1, 2, 3][: 1 + len(t) % 3] for p in pairs for t in (p.sent0, p.sent1)}
    batches = Batches(pairs, ids, {"C0": 0, "C1": 1, "C2": 2}, batch_size=4, seed=7, pad_id=0)
    tokens, mask, labels = batches.batch(0)
    assert tokens.shape[0] == 8 and labels[:4].tolist() == labels[4:].tolist()
    assert torch.equal(batches.batch(1)[2], Batches(pairs, ids, batches.label_ids, 4, 7, 0).batch(1)[2])
    seen = [batches.batch(step)[0] for step in range(batches.per_epoch)]
    assert sum(len(t) for t in seen) == 20  # one epoch covers every pair (two texts) once


def test_sibling_batches_hold_one_category_together_and_cover_every_pair_once():
    from trainer.pairs import Pair
    from trainer.train import Batches, family

    codes = [f"{c}{n:02d}.{d}" for c in "AB" for n in range(4) for d in range(4)]  # 8 categories of 4
    pairs = [Pair(f"x{i}", f"y{i}", code) for i, code in enumerate(codes)] + [Pair("liver", "간", "liver")]
    ids = {t: [5, 6] for p in pairs for t in (p.sent0, p.sent1)}
    labels = {label: i for i, label in enumerate(sorted({p.label for p in pairs}))}
    names = {i: label for label, i in labels.items()}
    for epoch in range(3):
        batches = Batches(pairs, ids, labels, batch_size=4, seed=epoch, pad_id=0, siblings=1.0)
        steps = [batches.batch(epoch * batches.per_epoch + s)[2] for s in range(batches.per_epoch)]
        steps = [labels_of_batch[: len(labels_of_batch) // 2] for labels_of_batch in steps]  # sent0's half
        seen = [names[int(i)] for step in steps for i in step]
        assert sorted(seen) == sorted(p.label for p in pairs)  # every pair once per epoch
        runs = [family(label) for label in seen]
        assert len([f for i, f in enumerate(runs) if i == 0 or runs[i - 1] != f]) == 9  # one run each
        assert all(len({family(names[int(i)]) for i in step}) <= 2 for step in steps)
    random_order = Batches(pairs, ids, labels, batch_size=4, seed=0, pad_id=0)
    assert random_order.order(0) != Batches(pairs, ids, labels, 4, 0, 0, siblings=1.0).order(0)
    assert (
        family("K74.6") == "K74"
        and family("C0011849") == "C0011849"
        and family("heart attack") == "heart attack"
    )


def test_half_sibling_batches_take_half_of_each_batch_from_one_category(tiny_run):
    from trainer.pairs import Pair
    from trainer.train import Batches, family, prepare

    codes = [f"{c}{n:02d}.{d}" for c in "AB" for n in range(4) for d in range(4)]  # 8 categories of 4
    pairs = [Pair(f"left{i}", f"right{i}", code) for i, code in enumerate(codes)]
    ids = {t: [5, 6] for p in pairs for t in (p.sent0, p.sent1)}
    labels = {label: i for i, label in enumerate(sorted({p.label for p in pairs}))}
    for epoch in range(3):
        order = Batches(pairs, ids, labels, batch_size=4, seed=epoch, pad_id=0, siblings=0.5).order(0)
        assert sorted(order) == list(range(32))  # every pair once per epoch
        runs = [order[i] for i in range(32) if i % 4 < 2]  # the first two of each batch of four
        rest = [order[i] for i in range(32) if i % 4 >= 2]
        run_families = [family(codes[i]) for i in runs]
        starts = [f for i, f in enumerate(run_families) if i == 0 or run_families[i - 1] != f]
        assert len(starts) == len(set(run_families))  # each category's pairs in one run
        random_order = Batches(pairs, ids, labels, 4, epoch, 0).order(0)
        assert rest == [i for i in random_order if i in rest]  # the other half: the random order
        assert set(runs) == set(random_order[:16])
    config = tiny_run("half", batching="half-siblings", max_steps="1")
    assert prepare(config, resume=False).batches.siblings == 0.5


def test_length_chunks_give_the_same_loss_and_gradients_with_less_padding(tiny_run):
    from trainer.distributed import Distributed
    from trainer.loss import MultiSimilarityLoss
    from trainer.train import prepare, step_loss

    run = prepare(tiny_run("chunks", dropout="0", max_steps="1"), resume=False)
    criterion = MultiSimilarityLoss(run.config.loss_config())
    widths = []

    def forward(ids, mask):
        widths.append(ids.shape[1])
        return run.model(ids, mask)

    batch = run.batches.batch(0)
    lengths = batch[1].sum(dim=1)
    assert lengths.min() < lengths.max() == batch[0].shape[1]  # names of several lengths
    results = []
    for chunks in (1, 3):
        widths.clear()
        run.model.zero_grad()
        loss = step_loss(forward, batch, criterion, Distributed(), torch.device("cpu"), None, chunks=chunks)
        loss.backward()
        grads = [p.grad.clone() for p in run.model.parameters() if p.grad is not None]
        results.append((loss.item(), grads, list(widths)))
    (loss1, grads1, widths1), (loss3, grads3, widths3) = results
    assert widths1 == [batch[0].shape[1]] and len(widths3) == 3 and widths3[0] < widths3[-1]
    assert loss3 == pytest.approx(loss1, abs=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads1, grads3))
    with pytest.raises(ValueError, match="length_chunks 4 undoes pad_to_max_length"):
        tiny_run("bad", length_chunks="4", pad_to_max_length="true")


def test_length_chunks_auto_on_a_cpu_and_refuse_torchrun(tiny_run, monkeypatch):
    from trainer.distributed import Distributed
    from trainer.train import CPU_LENGTH_CHUNKS, prepare

    assert prepare(tiny_run("auto", max_steps="1"), resume=False).chunks == CPU_LENGTH_CHUNKS > 1
    fixed = tiny_run("fixed", max_steps="1", pad_to_max_length="true")
    assert prepare(fixed, resume=False).chunks == 1
    assert prepare(tiny_run("two", max_steps="1", length_chunks="2"), resume=False).chunks == 2
    monkeypatch.setattr(Distributed, "start", classmethod(lambda cls, device_type: cls(world=2)))
    with pytest.raises(ValueError, match="length_chunks 8: one process only"):
        prepare(tiny_run("ddp", length_chunks="8"), resume=False)


def test_tiny_run_lowers_held_out_loss_and_writes_checkpoints(tiny_run):
    from core.bench import cpu_name
    from trainer.train import train

    config = tiny_run("run")
    result = train(config, progress=False)
    summary = json.loads((result.output / "run_summary.json").read_text())
    history = summary["history"]
    assert summary["steps"] == 30 and history[-1]["eval_loss"] < history[0]["eval_loss"]
    assert summary["cpu"] == cpu_name() and summary["precision"] == "fp32"  # step times depend on these
    assert summary["length_chunks"] == 8
    for name in ("last", "best"):
        saved = result.output / name
        assert (saved / "sapbert.json").is_file()
        assert json.loads((saved / "metrics.json").read_text()) in history  # the evaluation it was saved at
        assert json.loads((saved / "train_config.json").read_text())["max_steps"] == 30
    assert "ko2en" in history[-1]


def test_resume_matches_an_uninterrupted_run(tiny_run):
    from safetensors.torch import load_file

    from trainer.train import train

    full = train(tiny_run("full"), progress=False)
    interrupted = train(tiny_run("split"), progress=False, stop_after=15)
    assert interrupted.interrupted and interrupted.steps == 15
    resumed = train(tiny_run("split"), progress=False, resume=True)
    assert resumed.steps == 30 and not resumed.interrupted
    a = load_file(str(full.output / "last" / "model.safetensors"))
    b = load_file(str(resumed.output / "last" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key


def test_redraw_trains_each_epoch_on_its_own_draw_of_pairs_in_as_many_steps(tiny_run):
    """`redraw`: two epochs are the first epoch's pairs, then a second draw (other names of the
    concepts that have more pairs than `max_pairs`), in one pass of two epochs' steps."""
    from trainer.pairs import read_pairs
    from trainer.train import train

    runs = {}
    for name, redraw in (("same", "false"), ("redrawn", "true")):
        config = tiny_run(name, epochs="2", max_steps="0", max_pairs="2", eval_every="0", redraw=redraw)
        result = train(config, progress=False, stop_after=1)
        state = json.loads((result.output / "last" / "trainer_state.json").read_text())
        runs[name] = read_pairs(result.output / "train_pairs.tsv"), state["total"]
    (once, total_once), (twice, total_twice) = runs["same"], runs["redrawn"]
    first, second = twice[: len(once)], twice[len(once) :]
    assert first == once and second and set(second) != set(once)
    assert {p.label for p in second} <= {p.label for p in once}  # the same concepts, other pairs
    assert abs(total_twice - total_once) <= 1 and total_once > 1


def test_layers_option_keeps_the_first_layers(tiny_run):
    from encoder.model import SentenceEncoder
    from trainer.train import train

    # eval_every=0: evaluated once, at the end
    result = train(tiny_run("one-layer", layers="1", max_steps="2", eval_every="0"), progress=False)
    model = SentenceEncoder.load(result.output / "last")
    assert len(model.backbone.encoder.layer) == 1 and model.backbone.config.num_hidden_layers == 1
    assert json.loads((result.output / "last" / "metrics.json").read_text())["step"] == 2
    with pytest.raises(ValueError, match="eval_every must be >= 0"):
        tiny_run("negative", eval_every="-1")
    with pytest.raises(ValueError, match="only 2"):
        train(tiny_run("too-many", layers="5"), progress=False)


def test_cli_resume_continues_with_the_runs_own_config(tiny_run):
    """`trainer run --output DIR --resume` without the original flags: the saved config rules
    (the default preset would have replaced the tiny model and crashed)."""
    from trainer.__main__ import main
    from trainer.train import train

    config = tiny_run("cli-resume", max_steps="6", eval_every="0")
    first = train(config, progress=False, stop_after=3)
    assert first.interrupted and first.steps == 3
    assert main(["run", "--output", str(first.output), "--resume"]) == 0
    saved = json.loads((first.output / "train_config.json").read_text())
    assert saved["model"] == "tiny" and saved["max_steps"] == 6
    metrics = json.loads((first.output / "last" / "metrics.json").read_text())
    assert metrics["step"] == 6


def test_wise_interpolates_a_run_with_its_base(tiny_run):
    """`trainer wise RUN --alpha A`: weights (1 − A)·base + A·trained, a loadable checkpoint;
    A = 0 gives the base back, A = 1 the trained model."""
    from safetensors.torch import load_file

    from encoder.model import SentenceEncoder
    from trainer.__main__ import main
    from trainer.config import resolve_config
    from trainer.train import base_checkpoint, train
    from trainer.wise import interpolate_weights

    result = train(tiny_run("wise", max_steps="4", eval_every="0", lr="1e-2"), progress=False)
    assert main(["wise", str(result.output), "--alpha", "0", "--alpha", "0.25", "--alpha", "1"]) == 0
    base_dir = base_checkpoint(resolve_config(saved=result.output / "train_config.json"))
    base = load_file(str(Path(base_dir) / "model.safetensors"))
    tuned = load_file(str(result.output / "last" / "model.safetensors"))
    changed = [k for k in tuned if not torch.equal(tuned[k], base[k])]
    assert changed, "training changed no weight"
    zero, quarter, one = (
        load_file(str(result.output / f"wise-{a}" / "model.safetensors")) for a in ("0", "0.25", "1")
    )
    for key in changed:
        assert torch.allclose(zero[key], base[key]) and torch.allclose(one[key], tuned[key])
        assert torch.allclose(quarter[key], 0.75 * base[key] + 0.25 * tuned[key], atol=1e-6)
    assert json.loads((result.output / "wise-0.25" / "wise.json").read_text())["alpha"] == 0.25
    model = SentenceEncoder.load(result.output / "wise-0.25").eval()
    vector = model(torch.tensor([[0, 5, 6, 2]]), torch.ones(1, 4, dtype=torch.long))
    assert vector.shape == (1, model.dim) and torch.isfinite(vector).all()
    with pytest.raises(ValueError, match="alpha"):
        interpolate_weights(base, tuned, 1.5)
    with pytest.raises(ValueError, match="base lacks"):
        interpolate_weights({k: v for k, v in base.items() if k != changed[0]}, tuned, 0.5)
    with pytest.raises(ValueError, match="shape"):
        interpolate_weights({**base, changed[0]: base[changed[0]][..., :1]}, tuned, 0.5)


def test_a_run_keeps_the_base_it_started_from_after_the_dictionary_changes(tiny_run, small_kcd, tmp_path):
    """The tiny (and the offline) base follows the dictionary's texts: once the dictionary (or
    the bank) changes after training, resolving the base again gives another one, whose
    embedding rows belong to other tokens. `trainer wise` and a resume use the recorded base;
    interpolating with another base is refused."""
    from safetensors.torch import load_file

    from trainer.__main__ import main
    from trainer.train import base_checkpoint, resolve_base, train
    from trainer.wise import interpolate_checkpoints

    dictionary = tmp_path / "kcd.tsv"
    dictionary.write_text(small_kcd.read_text(encoding="utf-8"), encoding="utf-8")
    config = tiny_run("kept", dictionary=str(dictionary), max_steps="4", eval_every="0")
    result = train(config, progress=False)
    started = base_checkpoint(config)
    rows = "".join(
        f"Z{i:02d}\t새로운 이름 {i}번째 질환 {i * 7}형\tNovel zyxwv disorder {i}\n" for i in range(60)
    )
    with dictionary.open("a", encoding="utf-8") as handle:
        handle.write(rows)
    other = resolve_base(config, load_dictionary(dictionary))
    assert Path(other) != Path(started)  # the changed dictionary resolves to another base
    assert base_checkpoint(config) == started  # the run's own record wins
    assert main(["wise", str(result.output), "--alpha", "0"]) == 0
    base = load_file(str(Path(started) / "model.safetensors"))
    zero = load_file(str(result.output / "wise-0" / "model.safetensors"))
    assert all(torch.equal(zero[k], base[k]) for k in zero)
    with pytest.raises(ValueError, match="vocabulary"):
        interpolate_checkpoints(other, result.output / "last", 0.5, tmp_path / "mixed")
    # a resume continues from the recorded base and pairs, not from the changed dictionary's
    pairs = (result.output / "train_pairs.tsv").read_bytes()
    resumed = train(
        tiny_run("kept", dictionary=str(dictionary), max_steps="6", eval_every="0"),
        resume=True,
        progress=False,
    )
    assert resumed.steps == 6 and base_checkpoint(config) == started
    assert (result.output / "train_pairs.tsv").read_bytes() == pairs


def test_the_held_out_split_is_the_benchmark_rule_for_kcd_and_a_fixed_two_percent_otherwise():
    from core.evaluation import held_out
    from trainer.train import split_rule

    assert split_rule(True) is held_out
    rule = split_rule(False)
    codes = [f"C{i:07d}" for i in range(1, 5001)]  # CUI-shaped, as a KOSTOM or UMLS run has
    held = [c for c in codes if rule(c)]
    assert 75 <= len(held) <= 125  # ~2 %
    # pinned: a changed rule would silently move codes between a run's training and its
    # evaluation (and between a resumed run and its first half)
    assert held[:6] == ["C0000080", "C0000140", "C0000249", "C0000290", "C0000303", "C0000371"]
    assert all(rule(c) is True for c in held) and not rule("C0000001")


def test_training_pairs_never_hold_a_held_out_code_or_name_and_eval_pairs_only_those(small_kcd):
    """What `train()` trains and evaluates on, from the outside: I10 is a held-out category of
    the benchmark; two synonyms of it pair with each other (neither is a dictionary name), and a
    synonym of a training code repeats I10's name."""
    from core.dictionary import load_dictionary
    from core.evaluation import held_out
    from core.text import normalize
    from trainer.train import split_rule, training_pairs

    dictionary = load_dictionary(small_kcd)
    i10 = dictionary.concepts["I10"].name("ko")
    dictionary.add_synonyms(
        [("I10", "혈압 높음"), ("I10", "high blood pressure"), ("K74.6", i10)], source="curated"
    )
    config = resolve_config(
        preset="tiny",
        overrides={"dictionary": str(small_kcd), "format": "kcd", "translations": "0", "typos": "0"},
    )
    train, held = training_pairs(config, dictionary, split_rule(True), is_kcd=True)
    assert train and not [p for p in train if held_out(p.label)]
    assert not [p for p in train if normalize(i10) in (p.sent0, p.sent1)]  # I10's name, under K74.6
    assert held and all(held_out(p.label) for p in held)
    assert {"혈압 높음", "high blood pressure"} & {t for p in held for t in (p.sent0, p.sent1)}


def test_make_pairs_down_samples_around_the_anchor_and_takes_only_the_wanted_sources():
    from core.dictionary import Concept, Dictionary, Term

    names = ["간경화", "Liver Cirrhosis"] + [f"name {i}" for i in range(10)]  # 12 names, 66 pairs
    terms = [Term(t, "en") for t in names] + [
        Term("liver  cirrhosis", "en"),  # the same name once normalised
        Term("N/A", "en"),
        Term("curated name", "en", source="curated"),
        Term("my name", "en", source="user"),
    ]
    other = [Term("폐렴", "ko"), Term("pneumonia", "en"), Term("my pneumonia", "en", source="user")]
    dictionary = Dictionary(
        "t", {"K74.6": Concept("K74.6", "kcd", terms=terms), "J18.9": Concept("J18.9", "kcd", terms=other)}
    )
    samples = set()
    for seed in range(6):
        pairs = [p for p in make_pairs(dictionary, max_pairs=9, seed=seed) if p.label == "K74.6"]
        keys = [(p.sent0, p.sent1) for p in pairs]
        assert len(keys) == len(set(keys)) == 9
        assert ("간경화", "liver cirrhosis") in keys  # the dictionary's own two names, always
        assert sum(a == "간경화" for a, _ in keys) >= 1 + 4  # and (9 − 1) // 2 more on the first name
        assert {t for k in keys for t in k} <= {normalize(n) for n in names} | {"curated name"}
        samples.add(frozenset(keys))
    assert len(samples) > 1  # the seed chooses the sample
    everything = make_pairs(dictionary)
    assert len([p for p in everything if p.label == "K74.6"]) == 50  # max_pairs' default
    assert {(p.sent0, p.sent1) for p in everything if p.label == "J18.9"} == {("폐렴", "pneumonia")}
    only = make_pairs(dictionary, sources=("user",), include=lambda code: code == "K74.6")
    assert only == []  # one user name makes no pair; J18.9 is not included
    chosen = make_pairs(dictionary, sources=("dictionary", "user"), include=lambda code: code == "J18.9")
    assert sorted((p.sent0, p.sent1) for p in chosen) == [
        ("pneumonia", "my pneumonia"),
        ("폐렴", "my pneumonia"),
        ("폐렴", "pneumonia"),
    ]


def test_make_pairs_samples_each_pair_as_often_as_the_rule_says():
    # 4 names, 6 pairs, max_pairs=3: the first pair always; one of the two other pairs on the
    # first name (1/2 each); one of the 4 pairs left (1/4 each). So each other pair on the
    # first name comes 1/2 + 1/2 · 1/4 = 5/8 of the time, each pair without it 1/4.
    from collections import Counter

    from core.dictionary import Concept, Dictionary, Term

    names = [Term(t, "en") for t in ("a0", "a1", "a2", "a3")]
    dictionary = Dictionary("t", {"X": Concept("X", "kcd", terms=names)})
    runs = 2000
    counts = Counter(
        (p.sent0, p.sent1) for seed in range(runs) for p in make_pairs(dictionary, max_pairs=3, seed=seed)
    )
    expected = {("a0", "a1"): 1, ("a0", "a2"): 5 / 8, ("a0", "a3"): 5 / 8}
    expected |= {("a1", "a2"): 1 / 4, ("a1", "a3"): 1 / 4, ("a2", "a3"): 1 / 4}
    assert set(counts) == set(expected)
    for pair, share in expected.items():
        assert counts[pair] / runs == pytest.approx(share, abs=0.04), pair


def test_tokenize_all_cuts_each_text_at_max_length_with_its_prefix(tiny_checkpoint):
    from transformers import AutoTokenizer

    from trainer.train import tokenize_all

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint, local_files_only=True)
    long, short = "chronic disease of the liver " * 20, "liver"
    ids = tokenize_all(tokenizer, {long, short}, "query: ", 32)
    assert set(ids) == {long, short} and len(ids[long]) == 32  # names cut at max_length tokens
    assert ids[short] == tokenizer("query: liver")["input_ids"]  # the prefix and special tokens


def test_learning_rate_warms_up_linearly_then_decays_to_zero():
    import torch

    from trainer.train import _schedule

    def multipliers(total: int, warmup: int) -> list[float]:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        schedule = _schedule(optimizer, total, warmup)
        out = []
        for _ in range(total + 1):
            out.append(round(optimizer.param_groups[0]["lr"], 6))
            optimizer.step()
            schedule.step()
        return out

    assert multipliers(6, 2) == [0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0]
    assert multipliers(3, 1) == [1.0, 1.0, 0.5, 0.0]  # one warm-up step starts at the full rate
    assert multipliers(2, 0) == [1.0, 0.5, 0.0]


def test_a_kostom_file_trains_on_its_cuis_and_its_own_codes_where_a_row_has_none(tmp_path):
    from trainer.config import resolve_config
    from trainer.train import load_training_dictionary

    path = write_kostom(
        tmp_path / "kostom.txt",
        [["H1", "H1", "Liver Cirrhosis", "간경화", "C0023890", ""], ["H2", "H2", "Asthma", "천식", "", ""]],
    )
    for own_codes, codes in ((True, {"C0023890", "H2"}), (False, {"C0023890"})):
        config = resolve_config(
            preset="tiny", overrides={"dictionary": str(path), "use_kostom_codes": str(own_codes).lower()}
        )
        dictionary, is_kcd = load_training_dictionary(config)
        assert set(dictionary.concepts) == codes and not is_kcd


def test_training_speed_results_name_the_cpu():
    """`trainer speed` figures depend on the CPU, which this project's VMs change between sessions."""
    from core.bench import cpu_name
    from trainer.speed import machine

    recorded = machine()
    assert recorded["cpu"] == cpu_name() != "" and recorded["cores"] >= 1


@pytest.mark.parametrize("amx", [True, False])
def test_auto_precision_on_a_cpu_is_bf16_only_with_bf16_matrix_units(monkeypatch, amx):
    """bf16 autocast was 1.7 times as fast as fp32 on a CPU with AMX; without AMX fp32 stays."""
    import torch

    from trainer.config import TrainConfig
    from trainer.train import resolve_device

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    device, dtype = resolve_device(TrainConfig(device="cpu", precision="auto"))
    assert device.type == "cpu" and dtype == (torch.bfloat16 if amx else None)
    assert resolve_device(TrainConfig(device="cpu", precision="fp32"))[1] is None  # asked for: kept
