"""The analysis suite beyond the paper: per-layer, per-pair, per-class and per-sample statistics of
the neighbour tables and features, each a pure function of plain arrays; `stage.run_analysis`
assembles the tables."""
