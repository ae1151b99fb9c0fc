"""The reliability harness (issue 12): every bad input and fault a hostile user can produce, tried
against the real CLI, the real Ray pipeline, real Parquet files, the notebook API and the
dashboard; the outcome of each as one row of RELIABILITY.md.

    python -m nnts_ray.reliability --out RELIABILITY.md      # everything (a few minutes on 2 cores)
    python -m nnts_ray.reliability --only finished,values/k=[0]   # a group, an id, or a glob

Layout: `model` (Case, expectations, verdicts), `cases/` (the catalog), `files` (bad files and
damaged runs), `runner` (case processes), `observe` (file trees, tables, output), `harness`
(workspaces and scheduling), `report` (the markdown), `reference` (brute-force NNTS/NNTP/k-NN),
`targets` (every product entry point the harness calls).
"""
