"""Pipeline stages. Each reads files of the stages before it, writes only its own files (atomically),
and leaves completion markers so a re-run skips finished work."""
