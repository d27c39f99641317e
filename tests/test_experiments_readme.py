"""experiments/README.md gives a one-line Slurm call for every config in experiments/configs, and each line is one the
`scoreextra` command accepts: it names its own config, the slurm executor and KEY=VALUE submitit parameters."""
import re, shlex
from pathlib import Path

from scoreextra.cli import _kv, build_parser

ROOT = Path(__file__).resolve().parents[1]


def _slurm_lines() -> dict:
    text = (ROOT / "experiments" / "README.md").read_text()
    return {m.group(1): m.group(0) for m in re.finditer(r"scoreextra sweep experiments/configs/(\S+\.yaml) --executor slurm[^`]*", text)}


def test_every_config_has_a_slurm_line_the_cli_accepts():
    lines = _slurm_lines()
    configs = sorted(p.name for p in (ROOT / "experiments" / "configs").glob("*.yaml"))
    assert sorted(lines) == configs
    for name, line in lines.items():
        a = build_parser().parse_args(shlex.split(line)[1:])
        assert a.command == "sweep" and a.executor == "slurm" and a.config == f"experiments/configs/{name}"
        kv = _kv(a.slurm)
        assert isinstance(kv.get("timeout_min"), int) and kv["timeout_min"] > 0, line
        assert kv.get("gpus_per_node", 1) == 1, line


def test_job_counts_are_those_of_the_configs():
    "The table's job counts are `expand_config`'s for each config as committed (they went stale once a config grew)."
    from scoreextra.experiments import expand_config, load_config
    text = (ROOT / "experiments" / "README.md").read_text()
    rows = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\| `(\S+\.yaml)` \| [^|]+ \| (\d+) \|", text, re.M)}
    assert sorted(rows) == sorted(p.name for p in (ROOT / "experiments" / "configs").glob("*.yaml"))
    counts = {name: len(expand_config(load_config(ROOT / "experiments" / "configs" / name))) for name in rows}
    assert counts == rows
