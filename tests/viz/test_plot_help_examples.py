"""Issue 22, item 10: every ``rnnlab plot WHAT --help`` ends with examples that parse."""

from __future__ import annotations

import shlex

import pytest

from rnnlab.cli import build_parser, main
from rnnlab.cli.plot import EXAMPLES


@pytest.mark.parametrize("what", ["curves", "hidden", "predictions", "gradients",
                                  "activations"])
def test_plot_help_has_examples(what, capsys):
    with pytest.raises(SystemExit) as info:
        main(["plot", what, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    lines = [line.strip() for line in EXAMPLES[what].splitlines()[1:] if line.strip()]
    assert len(lines) >= 2
    parser = build_parser()
    for line in lines:
        assert line in out  # shown as written, not re-wrapped
        argv = shlex.split(line.split("  #")[0])
        assert argv[:3] == ["rnnlab", "plot", what]
        args = parser.parse_args(argv[1:])  # every example is a valid command line
        assert args.plot_command == what
