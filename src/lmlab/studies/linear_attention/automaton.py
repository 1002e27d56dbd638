"""Learning to execute finite automata in context (Yau et al., App. G.4).

Each example is a fresh random DFA with its transition table, a word, and the run of the DFA on
the word, as one token sequence:

    BOS  ( s a s' ) ( s a s' ) ...  SEP  w_1 .. w_L  SEP  ( s^0 w_1 s^1 ) ( s^1 w_2 s^2 ) ...

- the table: every transition (s, a) -> delta(s, a) as a parenthesized triple, 5 tokens each,
  5 |Q| |Sigma| tokens in all, in a random order per example (so it must be read, not memorized);
- the word: L symbols drawn uniformly;
- the history: the triples (s^i, w_{i+1}, s^{i+1}) of the run from the start state 0.

Train, validation and test examples never overlap, by construction: an example's identity is
its (DFA, word) pair, whatever the table's order, and a stable hash of that pair (and the seed)
assigns it to one split (`example_split`: 80% train, 10% validation, 10% test); each split's
data is drawn only from its own pairs. Validation drives early stopping and the choice among
runs; test is only reported.

The loss (cross-entropy) and the accuracy count the history tokens only: every one is determined
by what came before (the brackets by the format, s^i by the previous triple, w_{i+1} by the word,
s^{i+1} by the table), so 100% is reachable. The paper trains a Llama-style softmax transformer
(not MHLA) and reports the fewest training tokens (N x sequence length) that reach 99% next-token
accuracy as one of |Q|, |Sigma|, L grows; here the model is lmlab's GPT.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lmlab.errors import LmlabError
from lmlab.nn.gpt import GPT, GPTConfig
from lmlab.nn.train import TrainConfig, Trainer, accuracy
from lmlab.seeding import generator, numpy_rng

__all__ = [
    "DFA",
    "DfaJob",
    "Vocab",
    "dfa_dataset",
    "dfa_job",
    "encode_example",
    "example_key",
    "example_split",
    "history_consistent",
    "random_dfa",
]

PAD, BOS, SEP, LP, RP = 0, 1, 2, 3, 4
N_SPECIAL = 5


@dataclass(frozen=True)
class Vocab:
    """Token ids: 5 specials, then the states, then the symbols."""

    n_states: int
    n_symbols: int

    def state(self, s: int) -> int:
        return N_SPECIAL + s

    def symbol(self, a: int) -> int:
        return N_SPECIAL + self.n_states + a

    @property
    def size(self) -> int:
        return N_SPECIAL + self.n_states + self.n_symbols

    def seq_len(self, word_len: int) -> int:
        """BOS + table + SEP + word + SEP + history."""
        return 1 + 5 * self.n_states * self.n_symbols + 1 + word_len + 1 + 5 * word_len


@dataclass(frozen=True)
class DFA:
    """A deterministic finite automaton over states 0..Q-1 and symbols 0..S-1, starting in 0."""

    delta: np.ndarray  # (Q, S) next state

    @property
    def n_states(self) -> int:
        return self.delta.shape[0]

    @property
    def n_symbols(self) -> int:
        return self.delta.shape[1]

    def run(self, word: np.ndarray) -> np.ndarray:
        """The states visited, s^0 = 0 .. s^L.  (L + 1,)"""
        states = [0]
        for a in word:
            states.append(int(self.delta[states[-1], a]))
        return np.array(states)


def random_dfa(rng: np.random.Generator, n_states: int, n_symbols: int) -> DFA:
    """A DFA with uniformly random transitions."""
    if n_states < 1 or n_symbols < 1:
        raise LmlabError(f"a DFA needs at least one state and one symbol, got {n_states}, {n_symbols}")
    return DFA(rng.integers(n_states, size=(n_states, n_symbols)))


def encode_example(dfa: DFA, word: np.ndarray, rng: np.random.Generator,
                   shuffle: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Tokens (seq_len,) and a mask (seq_len,) that is True on the history tokens."""
    voc = Vocab(dfa.n_states, dfa.n_symbols)
    pairs = [(s, a) for s in range(dfa.n_states) for a in range(dfa.n_symbols)]
    if shuffle:
        pairs = [pairs[i] for i in rng.permutation(len(pairs))]
    toks = [BOS]
    for s, a in pairs:
        toks += [LP, voc.state(s), voc.symbol(a), voc.state(int(dfa.delta[s, a])), RP]
    toks += [SEP, *(voc.symbol(int(a)) for a in word), SEP]
    start = len(toks)
    states = dfa.run(word)
    for i, a in enumerate(word):
        toks += [LP, voc.state(int(states[i])), voc.symbol(int(a)), voc.state(int(states[i + 1])), RP]
    mask = np.zeros(len(toks), dtype=bool)
    mask[start:] = True
    return np.array(toks), mask


def history_consistent(tokens: np.ndarray, voc: Vocab, word_len: int) -> bool:
    """True when every history triple follows the table written at the start of `tokens`."""
    n_table = voc.n_states * voc.n_symbols
    table = {}
    for i in range(n_table):
        _, s, a, s2, _ = tokens[1 + 5 * i : 6 + 5 * i]
        table[(int(s), int(a))] = int(s2)
    w0 = 1 + 5 * n_table + 1
    word = tokens[w0 : w0 + word_len]
    h0 = w0 + word_len + 1
    state = voc.state(0)
    for i in range(word_len):
        lp, s, a, s2, rp = (int(t) for t in tokens[h0 + 5 * i : h0 + 5 * i + 5])
        if (lp, rp) != (LP, RP) or s != state or a != int(word[i]) or table.get((s, a)) != s2:
            return False
        state = s2
    return True


SPLITS = ("train", "val", "test")
_STREAM = {"train": 0, "val": 1, "test": 2}


def example_split(seed: int, delta: np.ndarray, word: np.ndarray) -> str:
    """Which split the example (DFA `delta`, `word`) belongs to: 'test' (10%), 'val' (10%), 'train'.

    A stable hash of the pair (and the seed), so the three splits are disjoint sets of pairs.
    """
    key = f"{seed}|{np.asarray(delta).tolist()}|{np.asarray(word).tolist()}".encode()
    bucket = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") % 10
    return "test" if bucket == 0 else "val" if bucket == 1 else "train"


def example_key(tokens: np.ndarray | Tensor, voc: Vocab, word_len: int) -> tuple[tuple, tuple]:
    """The (DFA table, word) an encoded example shows, whatever the order of its table."""
    toks = [int(t) for t in tokens]
    n_table = voc.n_states * voc.n_symbols
    delta = np.zeros((voc.n_states, voc.n_symbols), dtype=np.int64)
    for i in range(n_table):
        _, s, a, s2, _ = toks[1 + 5 * i : 6 + 5 * i]
        delta[s - N_SPECIAL, a - N_SPECIAL - voc.n_states] = s2 - N_SPECIAL
    w0 = 1 + 5 * n_table + 1
    word = tuple(t - N_SPECIAL - voc.n_states for t in toks[w0 : w0 + word_len])
    return tuple(map(tuple, delta.tolist())), word


def dfa_dataset(seed: int, n: int, n_states: int, n_symbols: int, word_len: int,
                stream: int = 0, split: str | None = None) -> dict[str, Tensor]:
    """n examples as a GPT batch: input_ids (n, T-1), targets (n, T-1), loss_mask on history targets.

    With `split` ('train', 'val' or 'test') only examples of that split are kept (`example_split`),
    drawn from the split's own stream; without it, every example from `stream`.
    """
    if split is not None and split not in _STREAM:
        raise LmlabError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    rng = numpy_rng(seed, 400, _STREAM[split] if split is not None else stream)
    rows, masks = [], []
    tries = 0
    while len(rows) < n:
        tries += 1
        if tries > 200 * n + 1000:
            raise LmlabError(f"too few distinct DFA examples ({n_states} states, {n_symbols} "
                             f"symbols, words of {word_len}) to fill a disjoint {split} split")
        dfa = random_dfa(rng, n_states, n_symbols)
        word = rng.integers(n_symbols, size=word_len)
        if split is not None and example_split(seed, dfa.delta, word) != split:
            continue
        toks, mask = encode_example(dfa, word, rng)
        rows.append(toks)
        masks.append(mask)
    toks = torch.as_tensor(np.stack(rows), dtype=torch.long)
    mask = torch.as_tensor(np.stack(masks))
    return {"input_ids": toks[:, :-1], "targets": toks[:, 1:], "loss_mask": mask[:, 1:]}


@dataclass(frozen=True)
class DfaJob:
    """Train lmlab's GPT on n_train DFA executions for `epochs`, stopping early on validation
    (`n_val` examples) at 99%; report history accuracy on `n_test` test examples."""

    seed: int
    n_states: int
    n_symbols: int
    word_len: int
    n_train: int
    epochs: int
    batch_size: int
    lr: float
    n_layer: int
    n_head: int
    d_model: int
    n_val: int
    n_test: int
    threads: int
    device: str


def dfa_job(job: DfaJob) -> dict[str, Any]:
    """Train and evaluate one point of the grid; returns accuracies, tokens seen and timing.

    `history_acc`, `state_acc`, `seq_acc` and `reached_99` are on the test split; the
    `val_` ones, which stopped training, on the validation split.
    """
    from lmlab.executor import torch_threads

    with torch_threads(job.threads):
        voc = Vocab(job.n_states, job.n_symbols)
        shape = (job.n_states, job.n_symbols, job.word_len)
        train = dfa_dataset(job.seed, job.n_train, *shape, split="train")
        val = dfa_dataset(job.seed, job.n_val, *shape, split="val")
        test = dfa_dataset(job.seed, job.n_test, *shape, split="test")
        T = train["input_ids"].shape[1]
        torch.manual_seed(job.seed)
        model = GPT(GPTConfig(vocab_size=voc.size, block_size=T, n_layer=job.n_layer,
                              n_head=job.n_head, d_model=job.d_model, pos="learned"))
        per_epoch = max(1, job.n_train // job.batch_size)
        steps = per_epoch * job.epochs

        def batches(step: int, _g: torch.Generator) -> dict[str, Tensor]:
            epoch, i = divmod(step - 1, per_epoch)
            perm = torch.randperm(job.n_train, generator=generator(job.seed, 401, epoch))
            idx = perm[i * job.batch_size : (i + 1) * job.batch_size]
            return {k: v[idx] for k, v in train.items()}

        # Which target positions are next-state tokens s^{i+1} (the ones that need the table).
        hist0 = 1 + 5 * job.n_states * job.n_symbols + 1 + job.word_len + 1
        state_pos = torch.zeros(T, dtype=torch.bool)
        for i in range(job.word_len):
            state_pos[hist0 + 5 * i + 3 - 1] = True  # target index = token index - 1

        def measure(m: torch.nn.Module, data: dict[str, Tensor]) -> dict[str, float]:
            dev = next(m.parameters()).device
            with torch.no_grad():
                logits = torch.cat([m(data["input_ids"][i : i + 256].to(dev))[0].cpu()
                                    for i in range(0, len(data["input_ids"]), 256)])
            acc = accuracy(logits, data["targets"], data["loss_mask"])
            st = accuracy(logits, data["targets"], state_pos.expand_as(data["targets"]))
            return {"history_acc": acc["token_acc"], "state_acc": st["token_acc"],
                    "seq_acc": acc["seq_acc"]}

        cfg = TrainConfig(steps=steps, lr=job.lr, warmup_steps=max(1, steps // 20),
                          weight_decay=0.1, grad_clip=1.0, log_every=max(1, steps),
                          eval_every=per_epoch, stop_metric="history_acc", stop_at=0.99,
                          seed=job.seed, device=job.device)
        t0 = time.perf_counter()
        metrics = Trainer(model, cfg, batches, evaluate=lambda m: measure(m, val)).fit()
        model.eval()
        tested = measure(model, test)
        return {
            **asdict(job),
            "seq_len": T + 1,
            "table_tokens": 5 * job.n_states * job.n_symbols,
            "history_acc": tested["history_acc"],
            "state_acc": tested["state_acc"],
            "seq_acc": tested["seq_acc"],
            "reached_99": tested["history_acc"] >= 0.99,
            "val_history_acc": metrics["history_acc"],
            "val_state_acc": metrics["state_acc"],
            "val_reached_99": metrics["history_acc"] >= 0.99,
            "steps": metrics["steps_done"],
            "train_tokens": job.n_train * (T + 1),
            "wall_s": time.perf_counter() - t0,
        }
