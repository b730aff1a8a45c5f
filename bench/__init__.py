"""dockprogress benchmarks: ``python -m bench`` (or ``make bench``) runs them all, prints a
table and rewrites ``BENCHMARKS.md``. Benchmarks are not tests: nothing here asserts."""
