"""The build machinery of ``make paper`` / ``make test``: headless notebook execution
(:mod:`.nbrun`) and the report page (:mod:`.report`). The configuration stamps Make depends on
are written by ``python -m alps.config``; run-to-run table comparison is ``python -m alps.compare``."""
