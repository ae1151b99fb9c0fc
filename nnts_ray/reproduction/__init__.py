"""The regenerable reproduction report of arXiv 2012.03793 (issue 14): run directories in, REPRODUCTION.md
and its figures out (`python -m nnts_ray.reproduction --help`)."""
