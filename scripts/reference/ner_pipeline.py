"""Reference answers of `POST /ner`: transformers' token-classification pipeline with
aggregation_strategy="simple" on the tiny random-weight NER fixture (tests/fixtures/hf_tiny_ner).

    python scripts/reference/ner_pipeline.py   # writes tests/fixtures/serve/ner_pipeline.json
"""
import json
import pathlib

from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

root = pathlib.Path(__file__).resolve().parents[2]
model_dir = root / "tests/fixtures/hf_tiny_ner"
texts = [
    "John Smith lives in New York City.",
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn, BRUSSELS 1996-08-22: the Commission's spokesman said Xqzvw unbelievably.",
    "Ünïcödé names like Zoë Saldaña and 北京 stay at their character offsets.",
    "U.S. President Bill Clinton met Japan's Ryutaro Hashimoto in Tokyo on Monday.",
]
tokenizer = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForTokenClassification.from_pretrained(model_dir).eval()
ner = pipeline("token-classification", model=model, tokenizer=tokenizer, aggregation_strategy="simple", device="cpu")
answers = [
    [{k: (float(v) if k == "score" else v) for k, v in e.items()} for e in ner(t)] for t in texts
]
out = root / "tests/fixtures/serve/ner_pipeline.json"
out.write_text(json.dumps({"texts": texts, "entities": answers}, indent=1, ensure_ascii=False) + "\n")
print(f"wrote {out}: {sum(map(len, answers))} entities")
