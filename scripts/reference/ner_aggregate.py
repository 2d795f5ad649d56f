"""transformers' token-classification decoding applied to given probabilities: the reference
for positio's `tasks::ner::decode` (tests/serve.rs). The pipeline's own `gather_pre_entities`,
`aggregate` and label filtering run on the probabilities positio computed, so the comparison
isolates the decoding (the forward pass is compared elsewhere). No PyTorch is needed.

    python3 scripts/reference/ner_aggregate.py < cases.json > entities.json

Input: {"model": DIR, "texts": [...], "probs": [[[p per label] per piece] per text]}.
Output: {"none"|"simple"|"first"|"average"|"max": [[entity, ...] per text]}.
"""
import json
import sys
import types
import warnings

import numpy as np
from transformers import AutoConfig, AutoTokenizer
from transformers.pipelines.token_classification import AggregationStrategy, TokenClassificationPipeline

warnings.simplefilter("ignore")
case = json.load(sys.stdin)
tokenizer = AutoTokenizer.from_pretrained(case["model"])
config = AutoConfig.from_pretrained(case["model"])
# The pipeline's decoding methods read only these two attributes.
pipe = object.__new__(TokenClassificationPipeline)
pipe.tokenizer = tokenizer
pipe.model = types.SimpleNamespace(config=config)
out = {}
for strategy in ["none", "simple", "first", "average", "max"]:
    agg = AggregationStrategy(strategy)
    answers = []
    for text, probs in zip(case["texts"], case["probs"]):
        enc = tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True, truncation=True)
        scores = np.array(probs, dtype=np.float32)
        assert len(scores) == len(enc["input_ids"]), (text, len(scores), len(enc["input_ids"]))
        pre = pipe.gather_pre_entities(
            text,
            np.array(enc["input_ids"]),
            scores,
            enc["offset_mapping"],
            np.array(enc["special_tokens_mask"]),
            agg,
        )
        grouped = pipe.aggregate(pre, agg)
        kept = [e for e in grouped if e.get("entity") not in ["O"] and e.get("entity_group") not in ["O"]]
        answers.append(
            [{k: (float(v) if k == "score" else int(v) if k == "index" else v) for k, v in e.items()} for e in kept]
        )
    out[strategy] = answers
json.dump(out, sys.stdout, ensure_ascii=False)
