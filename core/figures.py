"""Figures the core draws itself (plugins draw their own through ``Evaluator.plot``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hizkit.atomic import new_file, replace_file
from hizkit.dataset import CLASSES, Dataset


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_atomically(fig, path: Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure under a temporary name, then rename it into place."""
    with replace_file(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    return Path(path)


def stamp_grid(axes_row, cutouts: np.ndarray, bands, scale: str = "shared") -> None:
    """Draw one source's bands in a row of axes; ``shared`` uses one colour scale for
    all bands so that dropouts show as empty panels."""
    finite = cutouts[np.isfinite(cutouts)]
    lo, hi = np.percentile(finite, [1, 99.5]) if finite.size else (0, 1)
    for ax, img, band in zip(axes_row, cutouts, bands):
        if scale != "shared":
            f = img[np.isfinite(img)]
            lo, hi = np.percentile(f, [1, 99.5]) if f.size else (0, 1)
        shown = np.ma.masked_invalid(img)
        ax.imshow(shown, origin="lower", cmap="gray_r", vmin=lo, vmax=hi)
        ax.set_facecolor("#ffd0d0")  # missing coverage shows pink
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(band, fontsize=8)


def preprocessing_figure(before: Dataset, after: Dataset, out: Path, steps: list[str]) -> Path:
    """Rows of (before, after) for each source, one column per band."""
    plt = pyplot()
    n, nb = len(before), len(before.bands)
    fig, axes = plt.subplots(2 * n, nb, figsize=(1.6 * nb, 1.8 * 2 * n), squeeze=False)
    for i in range(n):
        row = before.catalog.iloc[i]
        label = f"id {row['id']} {row.get('label', '')}"
        if "z" in row:
            label += f" z={row['z']:.2f}"
        stamp_grid(axes[2 * i], before.cutouts[i], before.bands)
        stamp_grid(axes[2 * i + 1], after.cutouts[i], after.bands)
        axes[2 * i, 0].set_ylabel(f"{label}\nraw", fontsize=7)
        axes[2 * i + 1, 0].set_ylabel(" + ".join(steps), fontsize=7)
    fig.tight_layout()
    target = new_file(out)  # the user's file: never replaced, even if it appears meanwhile
    with target as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return target.path


def confusion_figure(confusions: dict[str, list], out: Path) -> Path:
    """One panel per classifier label: its confusion matrices (``confusions[label]``, one
    per run, rows true and columns predicted) summed over runs, each row normalised, with
    the percentage and the count in every cell."""
    plt = pyplot()
    k = len(CLASSES)
    fig, axes = plt.subplots(1, len(confusions), figsize=(3.6 * len(confusions), 3.4))
    for ax, (label, runs) in zip(np.atleast_1d(axes), confusions.items()):
        cm = np.sum([np.asarray(c) for c in runs], axis=0)
        rows = cm.sum(axis=1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        for i in range(k):
            for j in range(k):
                colour = "white" if norm[i, j] > 0.6 else "black"
                text = f"{100 * norm[i, j]:.1f}%\n({cm[i, j]})"
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
        ax.set_xticks(range(k), CLASSES, fontsize=8)
        ax.set_yticks(range(k), CLASSES, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{label} ({len(runs)} run(s))", fontsize=9)
    fig.tight_layout()
    save_atomically(fig, out)
    plt.close(fig)
    return Path(out)


def field_figure(sections: dict, out: Path) -> Path:
    """The field test at a glance: purity against completeness of the ranked high-z and
    brown-dwarf lists (each classifier's curve, its operating point marked), and the
    high-z list's purity in bins of measured S/N with 68 % Wilson intervals."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (label, sec) in enumerate(sections.items()):
        colour = colours[k % len(colours)]
        for ax, name in zip(axes[:2], ("highz", "brown_dwarf")):
            entry = sec["lists"][name]
            curve = entry["curve"]
            ax.plot(curve["completeness"], curve["purity"], color=colour, label=label, lw=1.2)
            point = entry["all"]
            ax.plot(
                point["completeness"]["value"], point["purity"]["value"], "o", color=colour, ms=5
            )
        bins = sec["lists"]["highz"]["by_snr"]
        mids = np.sqrt([b["lo"] * min(b["hi"], 4 * b["lo"]) for b in bins])
        value = np.array([b["purity"]["value"] for b in bins], dtype=float)
        low = np.array([b["purity"]["low"] for b in bins], dtype=float)
        high = np.array([b["purity"]["high"] for b in bins], dtype=float)
        shift = 1 + 0.04 * (k - len(sections) / 2)
        axes[2].errorbar(
            mids * shift, value, yerr=np.clip([value - low, high - value], 0, None),
            fmt="o-", color=colour,
            label=label, ms=4, capsize=2,
        )  # fmt: skip
    titles = ("high-z list (z ≥ 4), ranked", "brown-dwarf list, ranked")
    for ax, title in zip(axes[:2], titles):
        ax.set(xlabel="completeness", ylabel="purity", title=title, xlim=(0, 1), ylim=(0, 1.02))
        ax.grid(alpha=0.3)
    axes[2].set(
        xscale="log", xlabel="measured detection S/N", ylabel="purity of the high-z list",
        title="high-z purity by S/N (most probable class)", ylim=(0, 1.02),
    )  # fmt: skip
    axes[2].grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle("field test at the sky's mix (dots: the most probable class)", fontsize=10)
    fig.tight_layout()
    save_atomically(fig, out)
    plt.close(fig)
    return out
