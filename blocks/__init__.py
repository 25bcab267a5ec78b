"""fraudpipe's Prefect blocks: the Filestore share, the Redis work queue, the Argo Server.

`prefect block register -m blocks` registers every block class importable from here.
"""

from blocks.argo_server import ArgoServer
from blocks.filestore import FilestoreStorage
from blocks.redis_queue import RedisWorkQueue

__all__ = ["ArgoServer", "FilestoreStorage", "RedisWorkQueue"]
