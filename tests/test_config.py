"""The composed config: profiles, overrides, and the schema's one-line errors."""
import pytest
import yaml
from omegaconf.errors import ReadonlyConfigError

from optrepro.core.config import (PROFILES, ConfigError, check_overrides, compose, conf_dir, expand_sweep, identity,
                             paper_names, raw_paper, select_profile)


def test_smoke_is_default_and_full_selects_the_other_side():
    smoke = compose("amsgrad")
    full = compose("amsgrad", ["profile=full"])
    assert smoke.profile == "smoke" and full.profile == "full"
    raw = raw_paper("amsgrad")
    assert smoke.paper.online.steps == raw["online"]["steps"]["smoke"]
    assert full.paper.online.steps == raw["online"]["steps"]["full"]
    assert smoke.paper.slug == "amsgrad"


def test_override_applies_to_the_profile_in_use():
    cfg = compose("amsgrad", ["paper.online.steps=500", "seed=3"])
    assert cfg.paper.online.steps == 500 and cfg.seed == 3
    only_full = ["paper.online.steps.full=7"]
    assert compose("amsgrad", only_full).paper.online.steps != 7
    assert compose("amsgrad", [*only_full, "profile=full"]).paper.online.steps == 7


def test_int_is_accepted_where_a_float_is_expected():
    assert compose("amsgrad", ["paper.online.lr=1"]).paper.online.lr == 1.0
    assert isinstance(compose("amsgrad", ["paper.online.lr=1"]).paper.online.lr, float)


def test_config_is_read_only_and_paths_are_absolute():
    cfg = compose("amsgrad")
    with pytest.raises(ReadonlyConfigError):
        cfg.seed = 5
    assert cfg.out_dir.startswith("/") and cfg.data_dir.startswith("/")


BAD = [
    (["paper.online.stpes=5"], ["stpes", "paper.online.steps"]),
    (["sed=3"], ["sed", "seed"]),
    (["profile=ful"], ["ful", "smoke, full"]),
    (["device=gpu"], ["gpu", "auto, cpu, cuda"]),
    (["seed=-1"], ["-1", "non-negative"]),
    (["seed=abc"], ["abc", "non-negative"]),
    (["paper.online.steps=1.5"], ["1.5", "integer"]),
    (["paper.online.steps=many"], ["many", "integer"]),
    (["paper.bias_correction=3"], ["3", "boolean"]),
    (["paper.online=3"], ["paper.online", "group of keys"]),
    (["paper=amsgard"], ["amsgard", "amsgrad"]),
    (["force=maybe"], ["maybe", "true or false"]),
    (["seed=0,1"], ["seed=0,1", "-m"]),
    (["seed=="], ["seed=="]),
    (["+sede=1"], ["sede", "top-level keys"]),
]


@pytest.mark.parametrize("overrides,mentions", BAD, ids=[b[0][0] for b in BAD])
def test_bad_input_gives_one_clear_line(overrides, mentions):
    with pytest.raises(ConfigError) as err:
        compose("amsgrad", overrides)
    message = str(err.value)
    assert "\n" not in message
    for m in mentions:
        assert m in message


def test_unknown_paper_names_the_closest_matches():
    with pytest.raises(ConfigError, match="closest: amsgrad"):
        check_overrides(["paper=amsgard"])
    with pytest.raises(ConfigError, match="no paper given"):
        check_overrides(["seed=1"])


def test_sweeps_expand_to_the_cartesian_product_and_globs_to_papers():
    jobs = expand_sweep(["paper=glob(*)", "seed=0,1,2", "hydra.launcher.n_jobs=2"])
    assert len(jobs) == 3 * len(paper_names())
    assert ["paper=amsgrad", "seed=1"] in jobs
    assert expand_sweep(["paper=amsgrad", "paper.online.steps=range(1,3)"]) == [
        ["paper=amsgrad", "paper.online.steps=1"], ["paper=amsgrad", "paper.online.steps=2"]]


def test_identity_leaves_out_runner_and_location_keys():
    ident = identity(compose("amsgrad", ["batch=x", "force=true", "run_dir=/tmp/somewhere"]))
    assert ident == identity(compose("amsgrad"))
    assert "batch" not in ident and "run_dir" not in ident and ident["seed"] == 0


@pytest.mark.parametrize("slug", paper_names())
def test_every_paper_config_composes_in_both_profiles(slug):
    raw = yaml.safe_load((conf_dir() / "paper" / f"{slug}.yaml").read_text())
    assert "slug" not in raw, "paper.slug is set by the loader; a paper's file must not define it"
    for profile in PROFILES:
        cfg = compose(slug, [f"profile={profile}"])
        params = {k: v for k, v in raw.items() if k not in ("claims", "scope")}  # the contract is not a parameter
        assert cfg.paper == {"slug": slug, **select_profile(params, profile)}
