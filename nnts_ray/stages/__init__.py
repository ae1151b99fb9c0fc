"""Pipeline stages, each a function `(plan, run paths) -> manifest facts`. A stage reads the files of
the stages before it, writes only its own files (atomically), and leaves completion markers that record
each file's size and digest and what it was made from, so that a re-run skips intact work and redoes
what is missing, damaged or stale. `nnts_ray.pipeline.STAGES` lists them in order."""
