"""The bottom layer: facts every other layer shares, defined once.

``errors`` (one hierarchy, mapped to HTTP and exit codes once per edge), ``facts`` (checkpoint
names, statuses, sources), ``records`` (the typed records that cross layers) and ``timing``
(one clock and one ``poll_until``). It imports nothing of the project.
"""
