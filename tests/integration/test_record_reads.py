"""How often one daily pipeline run reads the share's record (lineage and manifest).

Each read of the lineage parses the whole chain, and each read of the manifest every
ingested day; both grow with the share's age. The budget below is this version's count
(tests/record_reads.py prints it): a change that reads the record more often fails here
and must say why, or read it once and pass it down.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from record_reads import DAYS, counting_record_reads, daily_run

pytestmark = pytest.mark.integration

#: Reads of each record file in one daily pipeline run over `DAYS` new days, as counted on
#: this version. It was 19/19 when the share's record got one home (the flows still read it
#: per stage and per day); the lists' outcomes and the days table added 1/1, the label and
#: closing checks of late data 2/7 (22/27), and counting the reads of a manifest not
#: written yet 0/5 (22/32). Now the flow reads each once before training and once after,
#: and passes them to its stages (2/2); ingest reads the manifest once per file before its
#: lock and once per day under it, and the lineage once per day under the lock (4/8 for 4
#: files); each step reads both itself, the lineage again under its lock to move the head
#: (8/4).
BUDGET = {"lineage": 14, "manifest": 14}

#: fraudpipe modules with a function called during that run (`recording_modules_entered`),
#: as counted on this version: 59 before the flows' shared parameters (the late rows kept
#: aside added trainer/data/held_parts.py to 58), 60 with flows/params.py, 62 with the
#: default learner's bounded members (trainer/learners/bounded.py) and the MLP's minibatch
#: pass in a module of its own (trainer/learners/mlp_pass.py), 63 with the step's malloc
#: thresholds (trainer/memory.py). A change that makes the daily run reach into more
#: modules fails here and must say why.
MODULES_BUDGET = 63


def test_counting_wrapper_sees_each_record_read(tmp_path: Path):
    from trainer.share.layout import create_share
    from trainer.share.lineage import Lineage
    from trainer.share.manifest import read_manifest

    share, _ = create_share(tmp_path / "share", "test")
    share.ingest_manifest.parent.mkdir(parents=True)
    share.ingest_manifest.write_text("{}")
    with counting_record_reads() as counts:
        Lineage.load(share)
        Lineage.load(share)
        read_manifest(share)
    assert counts == {"lineage": 2, "manifest": 1}


def test_daily_pipeline_reads_the_record_within_budget(prefect_harness: str, redis_url: str,
                                                      tmp_path: Path):
    counts = daily_run(tmp_path, redis_url)
    entered = counts.pop("entered")
    print(f"record reads of one daily pipeline run over {DAYS} days: {counts}; modules "
          f"entered: {', '.join(entered)}")
    assert counts["lineage"] >= DAYS and counts["manifest"] >= DAYS  # the steps read both
    assert all(counts[k] <= BUDGET[k] for k in BUDGET), counts
    # the flow's own stages and the domain functions they call are among those counted
    assert {"flows/pipeline.py", "flows/params.py", "trainer/step.py"} <= set(entered)
    assert counts["modules"] <= MODULES_BUDGET, entered
