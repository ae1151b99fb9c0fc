"""The command end to end on small fake run directories: every section, every figure, the command line."""

from __future__ import annotations

import re

import numpy as np
import pytest

from nnts_ray.data.base import resize
from nnts_ray.reproduction.__main__ import main
from tests.data.formats import write_mnist
from tests.reproduction.fakerun import N, write_run

SECTIONS = ["## Inputs", "## Summary", "## 1. Training recipe and accuracy", "## 2. Decisions the paper leaves open",
            "## 3. NNTS (the paper's Figure 1)", "## 4. NNTP (the paper's Table 1)", "## 5. The paper's claims, checked",
            "## 6. Internal consistency of the paper's numbers", "## 7. Training seeds"]


@pytest.mark.slow
def test_report_has_every_section_and_figure(tmp_path, capsys):
    images = resize(np.random.default_rng(0).integers(0, 256, (N, 1, 28, 28), dtype=np.uint8), 32)
    main_run = write_run(tmp_path / "runs" / "main", input_values=images)
    seed_runs = [write_run(tmp_path / "runs" / f"seed{s}", seed=s, ks=(5, 10)) for s in (1, 2)]
    write_mnist(tmp_path / "mnist", n_train=10, n_test=12)
    out = tmp_path / "doc" / "REPRODUCTION.md"
    argv = ["--run", str(main_run), "--seeds", str(main_run), *map(str, seed_runs),
            "--mnist-root", str(tmp_path / "mnist"), "-o", str(out)]
    assert main(argv) == 0
    text = out.read_text()
    assert [s for s in SECTIONS if s not in text] == []
    assert "python -m nnts_ray.reproduction " + " ".join(argv) in text
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert sorted(links) == ["reproduction/fig1_nnts.png", "reproduction/fig2_nnts_against_k.png",
                             "reproduction/fig3_nntp.png", "reproduction/fig4_seed_spread.png"]
    for link in links:
        assert (out.parent / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "on 12 test images" in text  # the tiny model evaluated on the test split written above
    assert "Not the paper's data" in text  # n = 60, not 60,000
    assert re.search(r"^\| block-diagonal \(k=5\)( \| holds \([^|]+\)){3} \| \*\*yes\*\* \|$", text, re.M)
    assert "**0.469**" in text  # the NNTS(I, C0) bound that Table 1 allows
    assert str(out) in capsys.readouterr().out


@pytest.mark.slow
def test_same_runs_give_the_same_report(tmp_path):
    run = write_run(tmp_path / "run")
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / name / "R.md"
        assert main(["--run", str(run), "-o", str(out)]) == 0
        outputs.append((out.read_text(), (out.parent / "r" / "fig1_nnts.png").read_bytes()))
    assert outputs[0][0].replace("/a/", "/b/") == outputs[1][0]
    assert outputs[0][1] == outputs[1][1]


def test_unfinished_run_is_refused(tmp_path, capsys):
    run = write_run(tmp_path / "run", status="running")
    assert main(["--run", str(run), "-o", str(tmp_path / "R.md")]) == 2
    assert "not complete" in capsys.readouterr().err
    assert not (tmp_path / "R.md").exists()
