"""Expected T5 relative-position buckets, from Hugging Face transformers' own T5 code.

Writes tests/fixtures/t5_buckets.json for the Rust unit test of position::t5_bucket. Run from the
repository root after `pip install torch transformers`:

    python3 scripts/reference/t5_buckets.py
"""
import json

import torch
from transformers.models.t5.modeling_t5 import T5Attention

RELATIVE = list(range(-300, 301))
cases = []
for bidirectional in (True, False):
    for num_buckets, max_distance in ((32, 128), (16, 64), (64, 256)):
        buckets = T5Attention._relative_position_bucket(
            torch.tensor(RELATIVE), bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance
        )
        cases.append({
            "bidirectional": bidirectional,
            "num_buckets": num_buckets,
            "max_distance": max_distance,
            "buckets": buckets.tolist(),
        })

with open("tests/fixtures/t5_buckets.json", "w") as f:
    json.dump({"relative_positions": RELATIVE, "cases": cases}, f)
print(f"wrote tests/fixtures/t5_buckets.json: {len(cases)} cases x {len(RELATIVE)} relative positions")
