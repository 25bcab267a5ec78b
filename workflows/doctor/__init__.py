"""`fraudpipe doctor --cluster`: what the GKE walk-through needs, checked on a live cluster.

`cluster.py` reads the objects through the Kubernetes API with the user's kubeconfig (the
`kubernetes_asyncio` client prefect-kubernetes brings), `checks.py` judges them, one
result per check with what to do, and `cli.py` plugs the command into `fraudpipe`. Nothing
here is imported by `trainer/`: the step pods never load a Kubernetes client.
"""
