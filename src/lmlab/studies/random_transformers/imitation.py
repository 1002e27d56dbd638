"""Circuit imitation (the paper's Sec. 6 / `imitation.py`): fit a random teacher's next-token law.

The teacher is a random GPT whose weights are scaled up so its output distribution is far from
uniform: the MLP output projections x20, the query/key/value projections x10 and the unembedding
x100/sqrt(d). The student sees random token strings and is trained on KL(teacher || student) at
the last position. A random student (only embeddings trained) should imitate narrow teachers and
fall behind as the teacher widens.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lmlab.executor import job_threads
from lmlab.nn import GPT, GPTConfig
from lmlab.nn.train import TrainConfig, Trainer
from lmlab.seeding import derive, generator
from lmlab.studies.random_transformers.steps import counting_steps

__all__ = ["ImitationJob", "kl_last", "random_teacher", "run_imitation"]

TEST_STREAM = 0x7E57


def random_teacher(width: int, vocab_size: int, seq_len: int, n_layer: int = 3, n_head: int = 2,
                   seed: int = 0) -> GPT:
    """The paper's scaled random teacher (frozen, eval mode)."""
    torch.manual_seed(seed)
    teacher = GPT(GPTConfig(vocab_size=vocab_size, block_size=seq_len, n_layer=n_layer,
                            n_head=n_head if width % n_head == 0 else 1, d_model=width,
                            tie_embeddings=False))
    with torch.no_grad():
        for name, p in teacher.named_parameters():
            if name.endswith("down_proj.weight"):
                p.mul_(20.0)
            elif name.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight")):
                p.mul_(10.0)
            elif name == "lm_head.weight":
                p.mul_(100.0 / math.sqrt(width))
    teacher.requires_grad_(False)
    return teacher.eval()


def kl_last(teacher_logits: Tensor, student_logits: Tensor) -> Tensor:
    """Mean KL(teacher || student) in nats at the last position of logits (B, T, V)."""
    t = F.log_softmax(teacher_logits[:, -1].float(), -1)
    s = F.log_softmax(student_logits[:, -1].float(), -1)
    return (t.exp() * (t - s)).sum(-1).mean()


@dataclass(frozen=True)
class ImitationJob:
    """One student (mode, width) imitating one teacher width; derived from the study config by
    `jobs.imitation_jobs` (no defaults here). `seed` fixes the teacher, the student's frozen
    weights and the data; `replicate` is its index among the seeds."""

    teacher_width: int
    mode: str
    student_width: int
    replicate: int
    seed: int
    vocab_size: int
    seq_len: int
    n_layer: int
    n_head: int
    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_steps: int
    n_test: int
    threads: int
    device: str

    @property
    def key(self) -> str:
        return f"imitation/{self.mode}/t{self.teacher_width}/s{self.replicate}"


def run_imitation(job: ImitationJob) -> dict[str, Any]:
    """Train the student; return its held-out KL and the uniform-student KL for scale."""
    job_threads(job.threads)
    t0, c0 = time.perf_counter(), time.process_time()
    teacher = random_teacher(job.teacher_width, job.vocab_size, job.seq_len, job.n_layer,
                             job.n_head, seed=derive(job.seed, "teacher"))
    torch.manual_seed(job.seed)
    student = GPT(GPTConfig(vocab_size=job.vocab_size, block_size=job.seq_len,
                            n_layer=job.n_layer, n_head=job.n_head, d_model=job.student_width,
                            tie_embeddings=False))
    student.set_trainable(job.mode)
    test_x = torch.randint(job.vocab_size, (job.n_test, job.seq_len),
                           generator=generator(job.seed, TEST_STREAM))
    with torch.no_grad():
        test_t = teacher(test_x)[0]

    def batches(step: int, gen: torch.Generator) -> dict[str, Tensor]:
        x = torch.randint(job.vocab_size, (job.batch_size, job.seq_len), generator=gen)
        with torch.no_grad():
            return {"input_ids": x, "teacher_logits": teacher(x)[0][:, -1:]}

    def loss_fn(model: torch.nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return kl_last(batch["teacher_logits"], model(batch["input_ids"])[0])

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        return {"test_kl": float(kl_last(test_t, model(test_x)[0]))}

    cfg = TrainConfig(steps=job.steps, lr=job.lr, weight_decay=job.weight_decay,
                      warmup_steps=min(job.warmup_steps, job.steps // 2), min_lr_ratio=0.0,
                      log_every=max(job.steps, 1), device=job.device, seed=job.seed)
    Trainer(student, cfg, counting_steps(batches, job.key), evaluate=evaluate,
            loss_fn=loss_fn).fit()
    student.cpu().eval()
    with torch.no_grad():
        kl = float(kl_last(test_t, student(test_x)[0]))
        uniform = float(kl_last(test_t, torch.zeros_like(test_t)))
    return {"key": job.key, "teacher_width": job.teacher_width, "mode": job.mode,
            "replicate": job.replicate, "seed": job.seed,
            "test_kl": kl, "uniform_kl": uniform, "wall_s": time.perf_counter() - t0,
            "cpu_s": time.process_time() - c0}
