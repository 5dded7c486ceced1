"""The curvature study end to end: files, reproducibility, Dask against local runs, CLI."""

from __future__ import annotations

import dataclasses

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("torch")
pytest.importorskip("pyarrow")
pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

from lrcore.cli import main
from lrcore.experiments.study import TABLES, TINY, run_study
from lrcore.experiments.sweep import StudyConfig, make_tasks, run_sweep

SMALL = dataclasses.replace(TINY, manifolds=("ellipse:b=0.5", "saddle"), steps=30, resolution=64)
#: Per-task timings (the only columns that differ between runs of the same task).
TIMINGS = ["cpu_seconds", "wall_seconds"]


def test_quick_study_writes_every_table_figure_and_the_report(tmp_path):
    # Two curves, so that the family is pooled (the primary endpoint) and compared
    # (heterogeneity); 150 steps, so that some runs fit and some are excluded.
    manifolds = ("ellipse:b=0.5", "ellipse:b=0.2", "torus", "digit:digit=0")
    config = dataclasses.replace(
        TINY,
        manifolds=manifolds,
        steps=150,
        arch_seeds=3,
        arch_widths=(8, 12),
        arch_depths=(1, 2),
        arch_manifolds=("ellipse:b=0.5", "ellipse:b=0.2"),
        dynamics_seeds=3,
        dynamics_factor=4,
        dynamics_checkpoints=2,
        dynamics_manifolds=("ellipse:b=0.5",),
    )
    result = run_study(config, tmp_path, jobs=1, quiet=True)
    names = {p.name for p in tmp_path.iterdir()}
    for table in TABLES:
        assert {f"{table}.csv", f"{table}.parquet"} <= names
        frame = pd.read_parquet(tmp_path / f"{table}.parquet")
        if table in ("windows", "changes", "runs", "fit", "convergence", "correlations"):
            assert len(pd.read_csv(tmp_path / f"{table}.csv")) == len(frame) > 0
    fit = result.tables["fit"]
    assert 0 < fit["fit_ok"].sum() < len(fit)
    assert set(result.tables["changes"]["run"]) == set(fit.loc[fit["fit_ok"], "run"])
    fitted = set(result.tables["changes"]["family"])
    for family in ("curves", "surfaces", "images"):
        assert f"training_{family}.png" in names
        if family in fitted:
            assert f"table_{family}.csv" in names
            assert f"scatter_{family}.png" in names
            assert f"forest_{family}.png" in names
    for manifold in ("ellipse_b_0_5", "torus", "digit_digit_0"):
        assert f"density_{manifold}.png" in names
    assert "dose_response.png" in names
    figures = ("theory", "tube_map", "tube_profile", "slope_jumps", "architectures")
    for figure in (*figures, "local_tube_profile"):
        assert f"{figure}.png" in names
    assert "dynamics.png" in names
    tables = result.tables
    # The measures beyond counts: one theory row per trajectory of every run, tube maps
    # of the plane curves' seed-0 runs (tube_seeds=1), slope jumps at every checkpoint.
    assert len(tables["theory"]) == len(
        tables["windows"].query("step == 0").drop_duplicates(["run", "trajectory"])
    )
    assert set(tables["tube"]["seed"]) == {0}
    assert set(tables["tube"]["manifold"]) <= {"ellipse:b=0.5", "ellipse:b=0.2"}
    # Local tube maps of the other manifolds' seed-0 runs (local_seeds=1).
    local = tables["local_tube"]
    assert set(local["seed"]) == {0}
    assert set(local["manifold"]) == {"torus", "digit:digit=0"}
    assert local.groupby("run")["window"].nunique().eq(8).all()
    assert set(tables["local_tube_concentration"]["arm"]) >= {"all"}
    assert tables["windows"]["jump_density"].notna().all()
    archs = tables["architectures"]
    assert {(8, 1), (8, 2), (12, 1), (12, 2)} <= set(zip(archs["width"], archs["depth"]))
    assert (archs.loc[archs["width"] > 0, "runs"] == 2 * 3).all()  # 2 manifolds x 3 seeds
    assert sorted(tables["dynamics"]["step"]) == [0, 300, 600]
    report = (tmp_path / "report.md").read_text()
    # Issue 12, done when: the report states the primary endpoint with its estimate and
    # CI, the equivalence result, the dose-response, both target arms, the discontinuity
    # result and the fit table; and the run time.
    correlations = result.tables["correlations"]
    if (
        correlations["primary"].any()
        and correlations.loc[correlations["primary"], "rho"].notna().all()
    ):
        assert "- Estimate: rho = " in report
        assert "- Equivalence (TOST, |rho| < 0.2): p" in report
    else:  # too few curves fit in this tiny study: the report says so
        assert "The primary endpoint could not be computed in this run" in report
    for sentence in (
        "## Primary endpoint",
        "## Dose-response",
        "## The two target arms",
        "The ambient arm's targets are functions of the input coordinates",
        "## Discontinuities of the target",
        "## Fit",
        "Run time: the training runs took ",
    ):
        assert sentence in report, sentence
    discontinuity = result.tables["discontinuity"]
    if (discontinuity["target"] == "step").any():
        assert "density near the jumps over elsewhere = " in report
    timings = pd.read_csv(tmp_path / "timings.csv")
    assert list(timings["phase"]) == [
        "main sweep", "architecture sweep", "dynamics", "statistics", "tables and figures"
    ]  # fmt: skip
    assert (timings["cpu_seconds"] > 0).all()
    for heading in (
        "## Breakpoints weighted by the slope jump",
        "## Density at initialisation against theory (Hanin-Rolnick)",
        "## Local complexity around plane curves (tube maps)",
        "(local tube maps)",
        "## Architectures",
        "## Training dynamics",
    ):
        assert heading in (tmp_path / "report.md").read_text()
    assert any(name.startswith("partition_ellipse") for name in names)
    assert all((tmp_path / n).stat().st_size > 0 for n in names)
    report = (tmp_path / "report.md").read_text()
    for heading in ("## Primary endpoint", "## Compared with the 2022 study", "## Fit"):
        assert heading in report
    assert "Resolution check" in report
    excluded = fit.loc[~fit["fit_ok"], "run"]
    assert all(run in report for run in excluded)
    windows = result.tables["windows"]
    assert set(windows["kind"]) == {"on", "offset", "line"}
    assert set(windows["step"]) == {0, 75, 150}


def test_same_seed_gives_the_same_tables_and_other_seeds_differ():
    tasks = make_tasks(SMALL)[:2]
    first = run_sweep(tasks, SMALL, quiet=True)
    second = run_sweep(tasks, SMALL, jobs=2, quiet=True)
    for a, b in zip(first, second):
        pd.testing.assert_frame_equal(a["windows"], b["windows"])
        pd.testing.assert_frame_equal(
            a["runs"].drop(columns=TIMINGS), b["runs"].drop(columns=TIMINGS)
        )
    assert not first[0]["windows"]["density"].equals(first[1]["windows"]["density"])


def test_sweep_on_a_dask_cluster_equals_the_local_run():
    distributed = pytest.importorskip("dask.distributed")
    tasks = make_tasks(SMALL)[:3]
    local = run_sweep(tasks, SMALL, jobs=1, quiet=True)
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        host="127.0.0.1",
        protocol="tcp",  # a real network transport on loopback, not in-process queues
        dashboard_address=None,
    ) as cluster:
        remote = run_sweep(tasks, SMALL, scheduler=cluster.scheduler_address, quiet=True)
    assert len(remote) == len(local)
    for a, b in zip(local, remote):
        for name in ("windows", "runs", "convergence", "theory", "tube"):
            pd.testing.assert_frame_equal(
                a[name].drop(columns=TIMINGS, errors="ignore"),
                b[name].drop(columns=TIMINGS, errors="ignore"),
            )


def test_config_and_cli_reject_bad_input(tmp_path, capsys):
    with pytest.raises(ValueError, match="families"):
        StudyConfig(families=("curves", "planets"))
    with pytest.raises(ValueError, match="manifolds"):
        StudyConfig(manifolds=("ellipse:c=2",))
    with pytest.raises(ValueError, match="resolution"):
        StudyConfig(resolution=10, windows=32)
    assert main(["study", "--tiny", "--targets", "wavy", "--out", str(tmp_path)]) == 2
    assert "targets" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["study", "--seeds", "0"])
    with pytest.raises(SystemExit):
        main(["study", "--quick", "--tiny"])
    with pytest.raises(SystemExit):
        main(["study", "--fit-fraction", "-1"])
    assert main(["study", "--tiny", "--arms", "chart", "--out", str(tmp_path)]) == 2
    assert "arms" in capsys.readouterr().err
    assert main(["study", "--tiny", "--fit-fraction", "2", "--out", str(tmp_path)]) == 2
    assert "fit_fraction" in capsys.readouterr().err


def test_study_without_torch_says_which_extra_to_install(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from lrcore.cli import main\n"
        f"raise SystemExit(main(['study', '--tiny', '--quiet', '--out', {str(tmp_path)!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1, done.stderr
    assert "lrcore[experiments]" in done.stderr


def test_cli_options_reach_the_study(tmp_path):
    argv = ["study", "--tiny", "--quiet", "--out", str(tmp_path), "--workers", "1"]
    argv += ["--manifolds", "circle+polygon:sides=5", "--targets", "step", "--seeds", "1"]
    argv += ["--steps", "10", "--checkpoints", "1", "--widths", "4,6", "--windows", "4"]
    argv += ["--arms", "ambient", "--heldout", "32", "--fit-fraction", "0.2", "--lines", "2"]
    argv += ["--motion-scale", "0", "--offset", "0.05", "--learning-rate", "0.02"]
    argv += [
        "--tube-seeds",
        "0",
        "--local-seeds",
        "0",
        "--no-theory",
        "--no-slope-jumps",
        "--arch-seeds",
        "1",
    ]
    argv += ["--arch-widths", "4", "--arch-depths", "1,2", "--dynamics-seeds", "1"]
    argv += ["--dynamics-factor", "2", "--dynamics-checkpoints", "2"]
    assert main(argv) == 0
    windows = pd.read_parquet(tmp_path / "windows.parquet")
    assert set(windows["manifold"]) == {"circle", "polygon:sides=5"}
    assert set(windows["target"]) == {"step"}
    assert set(windows["arm"]) == {"ambient"}
    assert set(windows["seed"]) == {0}
    assert set(windows["step"]) == {0, 10}
    assert set(windows["width"]) == {4, 6}
    assert windows.groupby(["manifold", "width", "trajectory"]).size().eq(2 * 4).all()
    assert set(windows["trajectory"]) >= {"line:0", "line:1", "offset+:curve"}
    runs = pd.read_parquet(tmp_path / "runs.parquet")
    assert set(runs["heldout"]) == {32}
    assert (runs["motion_distance"] == 0).all()
    assert runs["fit_threshold"].to_numpy() == pytest.approx(0.2 * runs["target_variance"])
    assert windows["jump_density"].isna().all()
    assert pd.read_parquet(tmp_path / "theory.parquet").empty
    assert pd.read_parquet(tmp_path / "tube.parquet").empty
    archs = pd.read_parquet(tmp_path / "architectures.parquet")
    assert {(4, 1), (4, 2)} <= set(zip(archs["width"], archs["depth"]))
    dynamics = pd.read_parquet(tmp_path / "dynamics_windows.parquet")
    assert sorted(set(dynamics["step"])) == [0, 10, 20]  # 2 x 10 steps, 2 checkpoints


def test_the_default_and_quick_studies_have_the_designs_the_issues_ask_for():
    from lrcore.experiments.study import DEFAULT, QUICK
    from lrcore.experiments.sweep import architecture_config, dynamics_config

    specs = DEFAULT.manifold_specs()
    assert len(DEFAULT.seeds) >= 20
    assert set(DEFAULT.arms) == {"arc", "ambient"}
    assert set(DEFAULT.targets) == {"smooth", "step"}
    assert DEFAULT.permutations >= 9999
    for series in ("ellipse:b=", "profile:amplitude=", "torus:minor="):
        assert sum(s.startswith(series) for s in specs) == 4, series
    assert sum(s.startswith("digit:") and "translation" not in s for s in specs) >= 5
    assert len(make_tasks(DEFAULT)) == 24 * 2 * 2 * 20
    # Issue 15: the architecture sweep (16/32/64 x 2/3/4) and the dynamics (10x steps)
    # are part of the default run; the measures too.
    arch = architecture_config(DEFAULT)
    assert arch is not None
    assert {(t.width, t.depth) for t in make_tasks(arch)} == {
        (w, d) for w in (16, 32, 64) for d in (2, 3, 4)
    }
    dynamics = dynamics_config(DEFAULT)
    assert dynamics is not None
    assert dynamics.steps == 10 * DEFAULT.steps
    assert DEFAULT.slope_jumps
    assert DEFAULT.theory
    assert DEFAULT.tube_seeds > 0
    assert DEFAULT.local_seeds >= 5
    assert DEFAULT.local_points > 0
    assert architecture_config(DEFAULT).local_seeds == dynamics.local_seeds == 0
    # --quick: the same design on a subset.
    assert set(QUICK.manifold_specs()) < set(specs)
    assert len(make_tasks(QUICK)) < len(make_tasks(DEFAULT)) / 5


def test_local_tube_maps_of_a_run_match_slices_of_its_networks():
    # Oracle: at each sample point, slice_2d of the run's initial and final networks with
    # each offset band of the tangent-normal plane (a frame built here) as its domain;
    # the band's interior edge length over its area is the table's density.
    import numpy as np

    import lrcore
    from lrcore.experiments.sweep import Task, _local_plan, prepare_task, run_task

    config = dataclasses.replace(SMALL, manifolds=("torus",), local_points=8, tube_bins=4)
    task = Task("torus", "smooth", 0, 8, 2, "arc")
    result = run_task(task, config, keep_weights=True)
    table = result["local_tube"]
    setup = prepare_task(task, config)
    on = [t for t in setup.trajectories if t.kind == "on"]
    assert len(table) == 8 * 4  # 2 points on each of 4 curves, 4 bands
    assert sorted(set(table["trajectory"])) == sorted(f"on:{t.name}" for t in on)
    half = float(table["half_width"].iloc[0])
    assert half == pytest.approx(min(2 * config.offset, 0.8 / 2.0))  # torus: minor 0.5
    a = float(table["half_length"].iloc[0])
    assert a == pytest.approx(half / 2)
    plan = _local_plan(setup, config)
    assert plan is not None
    nets = {name: lrcore.Network(*result["weights"][name]) for name in ("init", "final")}
    edges = np.linspace(-half, half, 5)
    for point, rows in table.groupby("window"):
        rows = rows.sort_values("offset_bin")
        curve = next(t for t in on if f"on:{t.name}" == rows["trajectory"].iloc[0])
        # The plan's point is a vertex of that curve, its tangent along the curve there,
        # its normal the torus's outward normal (the offset trajectories' direction).
        vertex = int(np.argmin(np.linalg.norm(curve.points - plan.points[point], axis=1)))
        assert np.array_equal(curve.points[vertex], plan.points[point])
        step = curve.points[(vertex + 1) % len(curve.points)] - curve.points[vertex - 1]
        t = step / np.linalg.norm(step)
        assert abs(t @ plan.tangents[point]) == pytest.approx(
            np.linalg.norm(plan.tangents[point]), rel=1e-12
        )
        n = curve.normals[vertex]
        assert np.array_equal(plan.normals[point], n)
        assert rows["curvature"].iloc[0] == curve.measures["curvature"][vertex]
        n = n - (n @ t) * t
        n /= np.linalg.norm(n)
        for name, column in (("init", "tube_init"), ("final", "tube_final")):
            for j in range(4):
                band = np.array(
                    [[-a, edges[j]], [a, edges[j]], [a, edges[j + 1]], [-a, edges[j + 1]]]
                )
                piece = lrcore.slice_2d(
                    nets[name], plan.points[point], np.stack([t, n]), domain=band
                )
                inner = piece.edges[piece.edge_neurons[:, 0] >= 0]
                length = np.linalg.norm(
                    piece.vertices[inner[:, 0]] - piece.vertices[inner[:, 1]], axis=1
                ).sum()
                expected = length / (2 * a * (edges[j + 1] - edges[j]))
                assert rows[column].iloc[j] == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert table["tube_init"].sum() > 0
    assert not np.allclose(table["tube_init"], table["tube_final"])
    # Plane curves get the tube maps, not local ones.
    plane = run_task(Task("ellipse:b=0.5", "smooth", 0, 8, 2, "arc"), config)
    assert plane["local_tube"].empty
    assert not plane["tube"].empty


def test_cli_sets_the_local_tube_maps_seeds_and_points(tmp_path):
    argv = ["study", "--tiny", "--quiet", "--workers", "1", "--manifolds", "torus+helix"]
    argv += ["--seeds", "2", "--steps", "10", "--arms", "arc", "--targets", "smooth"]
    argv += ["--local-seeds", "2", "--local-points", "4", "--out", str(tmp_path / "on")]
    assert main(argv) == 0
    local = pd.read_parquet(tmp_path / "on" / "local_tube.parquet")
    assert set(local["seed"]) == {0, 1}
    assert set(local["manifold"]) == {"torus", "helix"}
    points = local.groupby("manifold")["window"].nunique()
    assert points["torus"] == 4
    assert points["helix"] == 4
    assert set(local.loc[local["manifold"] == "torus", "trajectory"]) == {
        "on:u0", "on:u1", "on:v0", "on:v1"
    }  # fmt: skip
    off = ["--local-seeds", "0", "--out", str(tmp_path / "off")]
    assert main([*argv[:-4], *off]) == 0
    assert pd.read_parquet(tmp_path / "off" / "local_tube.parquet").empty
    assert "(local tube maps)" not in (tmp_path / "off" / "report.md").read_text()
    with pytest.raises(SystemExit):
        main(["study", "--local-points", "0"])
