"""fraudpipe's local stack: redis-server, a Prefect server and a process worker on one machine.

Not flows: the launcher of `make run` (embedded.py), the stack `make up` keeps open
(launcher.py), the supervisor of the three services (services.py), the run directory's
lock (rundir.py), what a fresh server needs before a deployment can run (register.py), and
the check of the installed packages against requirements.lock (lockfile.py).
"""
