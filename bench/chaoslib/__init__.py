"""The chaos run: a fleet of real daemons on one bare remote, under injected faults.

`bench/chaos` is the entry point. The modules, in the order a run uses them:

- `plan`: everything random, drawn up front from one seed (jobs, messages, faults);
- `fleet`: the bare remote, the checkouts, their configuration and the daemons;
- `workload`: jobs and messages submitted through the command line, on schedule;
- `faults`: one injector per kind of fault, each measuring its recovery;
- `remote`: what the bare remote holds at the end, read from git objects;
- `invariants`: the promises checked at the end;
- `report`: the figures, as a table or JSON;
- `run`: the whole run.

This is a test harness, not part of the product: it drives `build-watcher` only
from outside (processes, files, git), as people and machines would.
"""
