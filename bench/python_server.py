"""The Python service a user would write instead of positio serve: FastAPI + uvicorn around
sentence-transformers (POST /embed, TEI's schema) or transformers' token-classification pipeline
(POST /ner, aggregation_strategy="simple"). Plain `def` handlers, so FastAPI runs them on its
thread pool, as the FastAPI documentation recommends for blocking work.

    python bench/python_server.py --task embed --model DIR --port 8081
    python bench/python_server.py --task ner --model DIR --port 8082
"""
import argparse
from typing import List, Union

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

parser = argparse.ArgumentParser()
parser.add_argument("--task", choices=["embed", "ner"], required=True)
parser.add_argument("--model", required=True)
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()
torch.set_grad_enabled(False)
app = FastAPI()


class Request(BaseModel):
    inputs: Union[str, List[str]]
    normalize: bool = True


if args.task == "embed":
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(args.model, device="cpu")

    @app.post("/embed")
    def embed(request: Request):
        texts = [request.inputs] if isinstance(request.inputs, str) else request.inputs
        return model.encode(texts, batch_size=32, normalize_embeddings=request.normalize).tolist()

else:
    from transformers import pipeline

    ner = pipeline("token-classification", model=args.model, aggregation_strategy="simple", device="cpu")

    @app.post("/ner")
    def entities(request: Request):
        def plain(found):
            return [{**e, "score": float(e["score"])} for e in found]

        if isinstance(request.inputs, str):
            return plain(ner(request.inputs))
        return [plain(f) for f in ner(request.inputs)]


@app.get("/health")
def health():
    return {"status": "ok"}


uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
