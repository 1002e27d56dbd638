"""Plugin studies for testing the study contract's plumbing (never shown as results).

`toy-mean` is instant: it draws seeded numbers and claims their mean is near 0.5.
`toy-copy` trains the lmlab GPT on the copy task with checkpoints, for the resume tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from lmlab.study import Claim, Study, StudyConfig, StudyInfo, register


@dataclass
class MeanConfig(StudyConfig):
    n: int = 1000
    tolerance: float = 0.05
    label: str = "x"
    mode: Literal["uniform", "normal"] = "uniform"
    sizes: tuple[int, ...] = (1, 2)
    scale: float | None = None
    verbose: bool = False
    fail: bool = False


class ToyMean(Study):
    id = "toy-mean"
    Config = MeanConfig
    presets = {"tiny": MeanConfig(), "big": MeanConfig(n=100_000)}

    def run(self, config: MeanConfig, run: Any) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        from lmlab.seeding import numpy_rng

        if config.fail:
            raise RuntimeError("asked to fail")
        x = numpy_rng(config.seed).random(config.n)
        run.log(step=0, mean=float(x.mean()))
        fig, ax = plt.subplots()
        ax.hist(x, bins=20)
        run.save_figure(fig, "histogram")
        return {"mean": float(np.mean(x)), "n": config.n}

    def claims(self, config: MeanConfig, metrics: dict[str, Any]) -> list[Claim]:
        m = metrics["mean"]
        return [
            Claim.check("mean", "the sample mean is near 0.5", "0.5", round(m, 4),
                        abs(m - 0.5) < config.tolerance),
            Claim.untestable("variance", "the variance is 1/12", "1/12", "not measured"),
        ]


@dataclass
class CopyConfig(StudyConfig):
    steps: int = 300
    ckpt_every: int = 25
    d_model: int = 32
    n_digits: int = 4


class ToyCopy(Study):
    id = "toy-copy"
    Config = CopyConfig
    presets = {"tiny": CopyConfig()}

    def run(self, config: CopyConfig, run: Any) -> dict[str, Any]:
        from lmlab.nn import GPT, GPTConfig
        from lmlab.nn.tasks import copy_task
        from lmlab.nn.train import TrainConfig, Trainer

        task = copy_task(n_digits=config.n_digits, batch_size=32, seed=config.seed)
        model = GPT(GPTConfig(vocab_size=task.vocab_size, block_size=task.block_size,
                              n_layer=2, n_head=2, d_model=config.d_model))
        cfg = TrainConfig(steps=config.steps, lr=3e-3, ckpt_every=config.ckpt_every,
                          log_every=10, seed=config.seed, device="cpu", warmup_steps=20)
        metrics = Trainer(model, cfg, task, evaluate=task.evaluate, run=run).fit()
        return {k: v for k, v in metrics.items() if k not in ("wall_s", "tokens_per_s")}

    def claims(self, config: CopyConfig, metrics: dict[str, Any]) -> list[Claim]:
        return []


register(ToyMean(), StudyInfo("toy-mean", "Toy mean (test plugin)", "tests", 2026, "plumbing"))
register(ToyCopy(), StudyInfo("toy-copy", "Toy copy (test plugin)", "tests", 2026, "plumbing"))
