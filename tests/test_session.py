"""A notebook's setup and finish: seeding, device choice, run folder, record, loud failure."""
import pytest
import torch

import optrepro
from optrepro.core.claims import ClaimsFailed
from optrepro.core.config import ConfigError
from optrepro.core.record import read_json
from optrepro.core.session import pick_device


def test_setup_seeds_every_rng_and_makes_the_run_folder(project):
    a = optrepro.setup("probe", ["seed=5"])
    x = (torch.rand(3), __import__("numpy").random.rand(), __import__("random").random())
    b = optrepro.setup("probe", ["seed=5"])
    y = (torch.rand(3), __import__("numpy").random.rand(), __import__("random").random())
    assert torch.equal(x[0], y[0]) and x[1:] == y[1:]
    assert a.dir == b.dir and a.dir.is_dir() and a.dir.is_relative_to(project / "outputs")
    assert optrepro.setup("probe", ["seed=6"]).dir != a.dir


def test_device_auto_and_unavailable_devices():
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu") == torch.device("cpu")
    if torch.cuda.is_available():
        assert pick_device("cuda").type == "cuda"
    else:
        with pytest.raises(ConfigError, match="device=cuda was asked for but CUDA is not available"):
            pick_device("cuda")


def test_finish_writes_the_record_and_raises_on_a_failed_claim(project, capsys):
    run = optrepro.setup("probe", ["paper.x=2.0"])
    claims = optrepro.Claims()
    claims.check("x-small", "x is below the limit", run.paper.x, "<", run.paper.limit)
    with pytest.raises(ClaimsFailed, match="x-small"):
        run.finish(claims)
    assert capsys.readouterr().out.strip() == "FAIL  x-small  x is below the limit"
    record = read_json(run.dir / "record.json")
    assert record["verdict"] == "fail" and record["claims"][0]["measured"] == 2.0
    assert record["config"]["paper"]["x"] == 2.0 and record["overrides"] == ["paper.x=2.0"]
    with pytest.raises(ClaimsFailed, match="no claims"):
        run.finish(optrepro.Claims())


def test_a_notebook_cannot_compose_another_papers_config(project):
    with pytest.raises(ConfigError, match="this notebook is for paper 'probe', not 'other'"):
        optrepro.setup("probe", ["paper=other"])


def test_the_record_names_the_commit_the_run_started_from(project, monkeypatch):
    import optrepro.core.session as session
    monkeypatch.setattr(session, "git_commit", lambda root: "aaaa")
    run = optrepro.setup("probe", [])
    monkeypatch.setattr(session, "git_commit", lambda root: "bbbb")  # a commit made while the run goes on
    claims = optrepro.Claims()
    claims.check("x-small", "x is below the limit", run.paper.x, "<", run.paper.limit)
    assert run.finish(claims)["git_commit"] == "aaaa"


def test_finish_raises_when_a_claim_marked_not_reproduced_starts_to_hold(project):
    run = optrepro.setup("probe", [])
    claims = optrepro.Claims()
    claims.check("x-small", "x is below the limit", run.paper.x, "<", run.paper.limit, reproduces=False)
    with pytest.raises(ClaimsFailed, match="registered as not reproduced now hold .*: x-small"):
        run.finish(claims)
    assert read_json(run.dir / "record.json")["claims"][0]["verdict"] == "UNEXPECTED-PASS"


def test_overrides_given_as_one_string_as_papermill_p_passes_them(project):
    assert optrepro.setup("probe", "seed=7").cfg.seed == 7
    assert optrepro.setup("probe", '["seed=8"]').cfg.seed == 8
    assert optrepro.setup("probe", ("seed=9",)).cfg.seed == 9
    with pytest.raises(ConfigError, match=r"invalid overrides \[1\]: expected a list of strings"):
        optrepro.setup("probe", [1])


def test_run_gives_a_seeded_generator_the_dtype_and_the_thread_count(project):
    import torch
    (project / "conf" / "paper" / "probe.yaml").write_text("x: 1.0\nlimit: 1.5\ncrash: false\ndtype: float64\n"
                                                          "cpu_threads: {smoke: 1, full: 0}\n")
    threads = torch.get_num_threads()
    try:
        run = optrepro.setup("probe", ["seed=3", "device=cpu"])
        assert torch.get_num_threads() == 1
        assert run.dtype is torch.float64
        assert torch.equal(torch.rand(4, generator=run.generator()), torch.rand(4, generator=torch.Generator().manual_seed(3)))
        assert torch.equal(torch.rand(2, generator=run.generator(10)), torch.rand(2, generator=torch.Generator().manual_seed(13)))
        with pytest.raises(ConfigError, match="invalid paper.dtype 'float65': choose one of"):
            optrepro.setup("probe", ["paper.dtype=float65"]).dtype
    finally:
        torch.set_num_threads(threads)
