"""Plotly figures built from metric tables: pure functions (no Streamlit), shared by the pages and the report.

One module per subject: `base` (pair tables as matrices, titles, colour scales), `similarity` (NNTS,
permutation null, CKA, per class, differences between runs), `persistence` (NNTP), `layers` (per-layer
statistics), `samples` (per-sample distribution, 2-D maps), `runs` (stage timings).
"""
