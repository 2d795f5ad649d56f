"""Checks positio's OpenAI-compatible routes with the official `openai` client.

    python scripts/reference/openai_client.py http://127.0.0.1:PORT MODEL_NAME EXPECTED.json [API_KEY]

EXPECTED.json holds {"texts": [...], "embeddings": [[...], ...]} (positio embed's output for
the same texts). With API_KEY (a server started with --api-key), the client sends it, and a
client with another key must get the client's AuthenticationError. Exits non-zero with a
message on any mismatch.
"""
import base64
import json
import math
import struct
import sys

import openai

url, name, expected_file = sys.argv[1], sys.argv[2], sys.argv[3]
key = sys.argv[4] if len(sys.argv) > 4 else None
expected = json.load(open(expected_file))
client = openai.OpenAI(base_url=url + "/v1", api_key=key or "unused", max_retries=0)
if key is not None:
    intruder = openai.OpenAI(base_url=url + "/v1", api_key=key + "x", max_retries=0)
    for call in (intruder.models.list, lambda: intruder.embeddings.create(model=name, input="x")):
        try:
            call()
            raise SystemExit("a wrong API key was accepted")
        except openai.AuthenticationError as e:
            assert e.status_code == 401 and e.response.json()["error_type"] == "unauthorized", e.body


def close(a, b, tol=1e-5):
    return len(a) == len(b) and all(math.isclose(x, y, abs_tol=tol) for x, y in zip(a, b))


assert [m.id for m in client.models.list().data].count(name) == 1, "model not listed"
for fmt in ("float", "base64"):
    r = client.embeddings.create(model=name, input=expected["texts"], encoding_format=fmt)
    assert r.model == name and r.object == "list", r
    assert [d.index for d in r.data] == list(range(len(expected["texts"]))), r.data
    for d, e in zip(r.data, expected["embeddings"]):
        got = d.embedding
        if fmt == "base64":  # asked for explicitly, the client hands over the string
            raw = base64.b64decode(got)
            got = list(struct.unpack(f"<{len(raw) // 4}f", raw))
        assert close(got, e), (fmt, got[:4], e[:4])
    assert r.usage.prompt_tokens == r.usage.total_tokens > len(expected["texts"]), r.usage
# The client's default (no encoding_format: base64 over the wire, decoded by the client).
one = client.embeddings.create(model=name, input=expected["texts"][0])
assert close(one.data[0].embedding, expected["embeddings"][0])
try:
    client.embeddings.create(model="no-such-model", input="x")
    raise SystemExit("an unknown model was accepted")
except openai.NotFoundError as e:
    assert e.body.get("error_type") == "not_found" if isinstance(e.body, dict) else True, e.body
try:
    client.embeddings.create(model=name, input=[])
    raise SystemExit("an empty input was accepted")
except openai.BadRequestError:
    pass
print("openai client: ok")
