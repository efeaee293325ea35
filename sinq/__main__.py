"""``python -m sinq`` is the ``sinq`` command, with every command registered."""

from sinq.cli import app

app(prog_name="sinq")
