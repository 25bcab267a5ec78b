"""A share at argv[1] holding the 183-day landing argv[2]'s training days (copied).

    .venv/bin/python mkshare.py SHARE LANDING
"""

import shutil
import sys
from pathlib import Path

from trainer.share.layout import create_share

root, source = Path(sys.argv[1]), Path(sys.argv[2])
shutil.rmtree(root, ignore_errors=True)
share = create_share(root, "fraudpipe bench")[0]
share.training_dir.mkdir(parents=True)
for path in sorted(source.glob("*.parquet")):
    shutil.copyfile(path, share.training_dir / path.name)
