"""Assemble BENCHMARKS.md from the result files that each benchmark writes under benchmarks/results/.

Usage: python benchmarks/assemble.py   (no computation: it only copies the measured tables)
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    ("citeulike_cmn.md", "Accuracy: the published CiteULike-a table, reproduced and beaten"),
    ("defaults.md", "Out of the box: auto tunes itself, with no flags"),
    ("auto_vs_singles.md", "Out of the box: auto against the registry's single algorithms"),
    ("auto_vs_baselines.md", "Out of the box: auto against dense EASE^R and implicit's baselines"),
    ("accuracy.md", "Accuracy on more data sets"),
    ("diversity.md", "Diversity: repeated authors and the cost of the cap"),
    ("cold_start.md", "Cold items: new items against LightFM and CTR"),
    ("cold_start_folds.md", "Cold items on 5 folds"),
    ("cold_warm.md", "Cold items: warm accuracy with the blend on and off"),
    ("rating_prediction.md", "Rating prediction"),
    ("algorithms_speed.md", "Algorithm speed and memory against implicit"),
    ("pipeline.md", "The build pipeline, end to end"),
    ("layout_check.md", "The new layout against the old one"),
    ("build_tuning.md", "Full builds: tuned, reusing the tuning, untuned"),
    ("serving.md", "Serving"),
    ("pages.md", "Pages"),
    ("online_simulation.md", "Online simulation: experiments checked against the truth"),
    ("online_simulation_cascade.md", "Online simulation with readers who leave a list after a wanted click"),
    ("online_ips.md", "Online simulation: offline estimates of an exploration slot against its online CTR"),
    ("cold_item_latency.md", "New items: from save to servable"),
    ("impressions_serving.md", "Impression logging: serving with logging on and off"),
    ("impressions_load.md", "Impression logging under load: every served list stored"),
]

HEADER = """# Benchmarks

Every table below was produced by the command printed with it, on this project's machine
(2 cores, 24 GiB), on the date printed with it. This file is assembled from
`benchmarks/results/*.md` by `python benchmarks/assemble.py`; rerun a benchmark, then the
assembler, to refresh it. During these runs other jobs shared the 2 cores (the load average is
given where it was recorded), so seconds are pessimistic; ratios measured side by side in one
run are the figures to compare. Goals that were not met are said so in each section.

Load and fault figures are in [RELIABILITY.md](RELIABILITY.md).

"""


def main() -> None:
    parts = [HEADER]
    index = []
    for name, title in ORDER:
        path = HERE / "results" / name
        if not path.exists():
            parts.append(f"## {title}\n\nNot measured yet: `{name}` is missing.\n")
            continue
        text = path.read_text().strip()
        # Demote the result file's own headings by one level under our section title.
        text = "\n".join("#" + line if line.startswith("#") else line for line in text.splitlines())
        anchor = title.lower().replace(" ", "-").replace(",", "").replace(":", "")
        index.append(f"- [{title}](#{anchor})")
        if name == "accuracy.md" and (HERE / "results" / "accuracy_vs_fit_time.png").exists():
            text += "\n\n![Accuracy against fit time](benchmarks/results/accuracy_vs_fit_time.png)"
        parts.append(f"## {title}\n\n{text}\n")
    parts.insert(1, "\n".join(index) + "\n\n")
    (HERE.parent / "BENCHMARKS.md").write_text("\n".join(parts))
    print(f"Wrote {HERE.parent / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
