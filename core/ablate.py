"""Band ablation: retrain without each band in turn, and with F444W alone.

Each variant is a full benchmark (same seeds, so the same splits) on the dataset reduced
to a subset of bands; the drop in accuracy against the all-band run ranks the bands, as
in the poster's discussion (F200W the most important, F090W and F115W the least).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hizkit import progress
from hizkit.atomic import new_directory
from hizkit.bench import BenchConfig, run_benchmark
from hizkit.dataset import Dataset
from hizkit.registry import Registry, get_registry


def select_bands(data: Dataset, bands: tuple[str, ...]) -> Dataset:
    """The dataset restricted to ``bands`` (cutout planes and photometry)."""
    return data.select_bands(bands)


@dataclass
class AblationResult:
    table: pd.DataFrame  # variant, bands, classifier, accuracy mean/std, drop

    def ranking(self, label: str) -> list[tuple[str, float]]:
        t = self.table[
            (self.table["classifier"] == label) & self.table["variant"].str.startswith("without")
        ]
        t = t.sort_values("drop", ascending=False)
        return list(zip(t["variant"].str.replace("without ", ""), t["drop"]))


def variants(bands: tuple[str, ...], alone: str = "F444W") -> list[tuple[str, tuple[str, ...]]]:
    out = [("all bands", bands)]
    out += [(f"without {b}", tuple(x for x in bands if x != b)) for b in bands]
    if alone in bands:
        out.append((f"{alone} alone", (alone,)))
    return out


def run_ablation(
    data: Dataset, config: BenchConfig, registry: Registry | None = None
) -> AblationResult:
    registry = registry or get_registry()
    rows = []
    for name, bands in progress.track(variants(data.bands), "ablation variants"):
        progress.log(f"ablation: {name}")
        result = run_benchmark(select_bands(data, bands), config, registry)
        for label, stats in result.summary().items():
            mean, std = stats["accuracy"]
            bal, bal_std = stats.get("balanced_accuracy", (np.nan, np.nan))
            rows.append(
                {
                    "variant": name,
                    "bands": ",".join(bands),
                    "classifier": label,
                    "accuracy": mean,
                    "accuracy_std": std,
                    "balanced_accuracy": bal,
                    "balanced_accuracy_std": bal_std,
                }
            )
    table = pd.DataFrame(rows)
    full = table[table["variant"] == "all bands"].set_index("classifier")["accuracy"]
    table["drop"] = full.reindex(table["classifier"]).to_numpy() - table["accuracy"]
    return AblationResult(table)


def write_ablation(result: AblationResult, out: Path) -> Path:
    """ablation.csv, ablation.json and ablation.png in a new directory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hizkit.figures import save_atomically

    with new_directory(out) as tmp:
        t = result.table
        t.to_csv(tmp / "ablation.csv", index=False)
        (tmp / "ablation.json").write_text(
            json.dumps(
                {
                    "variants": json.loads(t.to_json(orient="records")),
                    "ranking": {c: result.ranking(c) for c in t["classifier"].unique()},
                },
                indent=2,
            )
        )
        labels = list(t["classifier"].unique())
        fig, ax = plt.subplots(figsize=(8, 4))
        names = [v for v in t["variant"].unique() if v != "all bands"]
        width = 0.8 / len(labels)
        for k, label in enumerate(labels):
            sub = t[t["classifier"] == label].set_index("variant").reindex(names)
            ax.bar(
                np.arange(len(names)) + k * width,
                100 * sub["drop"],
                width,
                yerr=100 * sub["accuracy_std"],
                label=label,
            )
        ax.set_xticks(
            np.arange(len(names)) + 0.4 - width / 2, names, rotation=30, ha="right", fontsize=8
        )
        ax.set_ylabel("accuracy drop vs all bands (points)")
        ax.axhline(0, color="k", lw=0.5)
        ax.legend(fontsize=8)
        fig.tight_layout()
        save_atomically(fig, tmp / "ablation.png")
        plt.close(fig)
    return Path(out)
