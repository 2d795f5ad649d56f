"""Reference answers for positio's recurrent layers: PyTorch nn.LSTM / nn.GRU (2 layers, one
or two directions) on right-padded rows through pack_padded_sequence, in float64, with the
gradients of sum(output * upstream) for every weight and the input.

    python scripts/reference/recurrent_parity.py   # writes tests/fixtures/recurrent/parity.safetensors
"""
import pathlib

import torch
from safetensors.torch import save_file
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

root = pathlib.Path(__file__).resolve().parents[2]
torch.manual_seed(0)
batch, length, d_in, hidden, layers = 3, 7, 6, 5, 2
lengths = torch.tensor([7, 4, 1])
tensors = {"lengths": lengths.to(torch.float64)}
for cell, cls in [("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU)]:
    for bidirectional in [False, True]:
        name = ("bi" if bidirectional else "") + cell
        rnn = cls(d_in, hidden, num_layers=layers, bidirectional=bidirectional, batch_first=True).double()
        x = torch.randn(batch, length, d_in, dtype=torch.float64, requires_grad=True)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=length)
        upstream = torch.randn_like(out)
        (out * upstream).sum().backward()
        tensors[f"{name}.x"] = x.detach()
        tensors[f"{name}.output"] = out.detach()
        tensors[f"{name}.upstream"] = upstream
        tensors[f"{name}.grad.x"] = x.grad
        for key, p in rnn.named_parameters():
            tensors[f"{name}.{key}"] = p.detach()
            tensors[f"{name}.grad.{key}"] = p.grad
out_path = root / "tests/fixtures/recurrent/parity.safetensors"
save_file({k: v.contiguous() for k, v in tensors.items()}, str(out_path))
print(f"wrote {out_path}: {len(tensors)} tensors (torch {torch.__version__})")
