#!/usr/bin/python3
"""Times PyTorch's CPU training window for the LSTM language model that
apps/tools/lstm_bench.cpp times in deja: embedding -> dropout -> LSTM
(batch-first, dropout between layers) -> dropout -> linear decoder, softmax
cross-entropy, backward, global-norm clipping 0.25, plain SGD; hidden state
carried and detached between windows; random token ids. Defaults: the medium
model (2 x 650, embedding 650, vocab 10000, seq 35, batch 20). Prints one JSON
line: {"model", "batch", "seq", "hidden", "layers", "vocab", "threads",
"median_ms", "forward_ms", "backward_ms", "tokens_per_s"}.

Run it at PyTorch's best settings here:
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ATEN_CPU_CAPABILITY=avx512 \
      OMP_WAIT_POLICY=PASSIVE MALLOC_MMAP_THRESHOLD_=10000000000 \
      MALLOC_TRIM_THRESHOLD_=10000000000 /usr/bin/python3 experiments/torch_lstm_step.py
Uses Debian's python3-torch (/usr/bin/python3)."""
import argparse, json, statistics, time

import torch
import torch.nn as nn


class LanguageModel(nn.Module):
    def __init__(self, vocab, emb, hidden, layers, dropout):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(vocab, emb)
        self.rnn = nn.LSTM(emb, hidden, layers, dropout=dropout, batch_first=True)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, ids, state):
        x = self.drop(self.encoder(ids))
        y, state = self.rnn(x, state)
        return self.decoder(self.drop(y)).reshape(-1, self.decoder.out_features), state


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--windows", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--seq", type=int, default=35)
    ap.add_argument("--hidden", type=int, default=650)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=10000)
    ap.add_argument("--dropout", type=float, default=0.5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = LanguageModel(a.vocab, a.hidden, a.hidden, a.layers, a.dropout)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    loss_fn = nn.CrossEntropyLoss()
    state = (torch.zeros(a.layers, a.batch, a.hidden), torch.zeros(a.layers, a.batch, a.hidden))
    fwd, bwd, total = [], [], []
    for w in range(a.warmup + a.windows):
        ids = torch.randint(0, a.vocab, (a.batch, a.seq))
        labels = torch.randint(0, a.vocab, (a.batch * a.seq,))
        state = tuple(s.detach() for s in state)
        t0 = time.perf_counter()
        opt.zero_grad()
        logits, state = model(ids, state)
        loss = loss_fn(logits, labels)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()
        t3 = time.perf_counter()
        if w >= a.warmup:
            fwd.append((t1 - t0) * 1e3)
            bwd.append((t2 - t1) * 1e3)
            total.append((t3 - t0) * 1e3)
    med = statistics.median(total)
    print(json.dumps({"model": "lstm_lm", "batch": a.batch, "seq": a.seq, "hidden": a.hidden,
                      "layers": a.layers, "vocab": a.vocab, "threads": a.threads,
                      "torch": torch.__version__, "median_ms": med,
                      "forward_ms": statistics.median(fwd), "backward_ms": statistics.median(bwd),
                      "tokens_per_s": a.batch * a.seq / (med / 1e3)}))


if __name__ == "__main__":
    main()
