"""cuda_standalone through brian2cuda.

- code generation for the networks: every run (no GPU or compiler needed beyond nvcc's presence);
- one nvcc compilation (marker `nvcc`, minutes; CI runs it through `make test-nvcc`);
- cpp_standalone against cuda_standalone on one network (marker `cuda`, needs a GPU; run by hand).
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from astrogate.analysis.recall import generated_problem, recall
from astrogate.models.parameters import Parameters

pytestmark = pytest.mark.brian2
pytest.importorskip("brian2cuda", reason="the cuda extra is not installed")
if shutil.which("nvcc") is None:
    pytest.skip("no nvcc: the CUDA toolkit is needed to configure brian2cuda", allow_module_level=True)

from astrogate.network.cuda import detect_compute_capability  # noqa: E402
from astrogate.network.recall import build_brian2_project  # noqa: E402


@pytest.fixture(scope="module")
def problem():
    return generated_problem(K=20, N=30, correlation=0.3, flip=0.25, seed=3)


def project_files(project: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in project.rglob("*") if p.suffix in (".cu", ".h") or p.name == "makefile"}


@pytest.mark.parametrize("gating, neuron", [("factorised", "rate"), ("wired", "rate"), ("dense", "rate"),
                                            ("factorised", "poisson"), ("factorised", "lif")])
def test_cuda_code_is_generated_for_rate_and_spiking_networks(tmp_path, problem, gating, neuron):
    info = build_brian2_project(problem, Parameters(), tmp_path, duration=5.0, gating=gating, neuron=neuron,
                                compile=False, compute_capability=8.0)
    project = Path(info["project"])
    files = project_files(project)
    # brian2cuda numbers repeated code objects (name_codeobject_1.cu) within one process
    kernels = [name for name, text in files.items() if "_codeobject" in name and name.endswith(".cu") and "__global__" in text]
    # the model's own updates became CUDA kernels: neuron and astrocyte Euler steps, the gating sums
    for part in ("agm_neurons_stateupdater", "agm_astrocytes_stateupdater", "agm_hub_lse"):
        assert any(name.startswith(part) for name in kernels), part
    makefile = files["makefile"]
    assert "-std=c++17" in makefile and "-arch=sm_80" in makefile
    assert "-march=native" not in makefile  # the project must compile for another machine's CPU too
    assert (project / "curand_link" / "libcurand.so").resolve().exists()
    assert info["binary"] is None
    if neuron != "rate":  # spikes leave the neurons and reach the astrocytes' readout on the GPU
        assert any("spike" in name or "thresholder" in name for name in kernels), sorted(kernels)
        if neuron == "poisson":  # rand() became cuRAND draws
            assert any("curand" in text for name, text in files.items() if name.endswith(".cu"))


def memory_in_a_users_network(tmp_path, compile: bool, readout: str = "event"):
    """A rate and a spiking AstrocyteGatedMemory (the event readout has a spike pathway inside the memory),
    unnamed, in the user's Network with a monitor, as a cuda_standalone project; returns the project folder.
    brian2cuda's spike-pathway kernel reads `defaultclock`, which a project whose objects all run on other
    clocks does not declare (templates/synapses.cu, whatever holds the Synapses): the event readout generates
    code but does not compile on cuda_standalone, so the compiled project uses the trace readout."""
    import brian2 as b2

    from astrogate.network import devices
    from astrogate.network.memory import AstrocyteGatedMemory

    build = devices.activate(devices.DeviceChoice("cuda_standalone", build_root=tmp_path, compute_capability=8.0),
                             0.1)
    rng = np.random.default_rng(0)
    xi = rng.choice([-1.0, 1.0], size=(5, 20))
    rate = AstrocyteGatedMemory(xi)
    spiking = AstrocyteGatedMemory(xi, neuron="poisson", readout=readout)
    rate.set_cue(xi[0])
    spiking.set_cue(xi[1])
    net = b2.Network(rate, spiking, b2.StateMonitor(rate.astrocytes, "g", record=True))
    net.run(2 * b2.ms)
    b2.device.build(directory=str(build), compile=compile, run=False, with_output=False)
    return build, rate.name, spiking.name


def test_cuda_project_declares_the_synapses_inside_a_memory(tmp_path):
    """brian2cuda declares the Synapses of a network's top-level objects only; the memory's before_run hands it
    its own (the undeclared normaliser's arrays once made the project fail to compile)."""
    build, rate, spiking = memory_in_a_users_network(tmp_path, compile=False)
    header = (build / "objects.h").read_text()
    for name in (rate, spiking):
        for synapses in ("overlap", "output", "normaliser"):
            assert f"{name}_{synapses}_multiple_pre_post" in header, (name, synapses)
    assert f"{spiking}_overlap_pre" in header  # the event readout's spike pathway


def test_compute_capability_is_checked(tmp_path, problem):
    from astrogate.errors import InputError

    with pytest.raises(InputError, match="not a CUDA one"):
        build_brian2_project(problem, Parameters(), tmp_path, compile=False, compute_capability=100.0)


@pytest.mark.nvcc
def test_cuda_project_compiles_with_nvcc_and_says_it_cannot_run_without_a_gpu(tmp_path):
    bin_dir = Path(sys.executable).parent
    proc = subprocess.run([str(bin_dir / "astrogate"), "recall", "--backend", "brian2", "--device", "cuda_standalone",
                           "--build-only", str(tmp_path), "--K", "20", "--N", "30", "--duration", "10"],
                          capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-3000:]
    binaries = list(tmp_path.glob("build-*/main"))
    assert len(binaries) == 1 and binaries[0].stat().st_size > 100_000
    if detect_compute_capability() is None:
        assert "no NVIDIA GPU on this machine: the CUDA project was not run" in proc.stdout


@pytest.mark.nvcc
def test_cuda_project_of_memories_in_a_users_network_compiles_with_nvcc(tmp_path):
    build, _, _ = memory_in_a_users_network(tmp_path, compile=True, readout="trace")
    assert (build / "main").stat().st_size > 100_000


@pytest.mark.cuda
@pytest.mark.parametrize("gating", ["factorised", "wired", "dense"])
def test_cuda_standalone_agrees_with_cpp_standalone(problem, gating):
    """As brian2cuda's own consistency tests: same network, both devices, float tolerance."""
    if detect_compute_capability() is None:
        pytest.skip("no NVIDIA GPU")
    results = {device: recall(problem, Parameters(), duration=50.0, tol=0.0, backend="brian2",
                                  device=device, gating=gating)
               for device in ("cpp_standalone", "cuda_standalone")}
    cpp, cuda = results["cpp_standalone"], results["cuda_standalone"]
    assert cuda["retrieved"] == cpp["retrieved"]
    np.testing.assert_allclose(cuda["g"], cpp["g"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(cuda["v"], cpp["v"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(cuda["overlap_trace"], cpp["overlap_trace"], rtol=0, atol=1e-9)
    assert cuda["brian2"]["simplex_error"] < 1e-12


@pytest.mark.parametrize("gating", ["factorised", "wired"])
def test_speed_benchmark_cuda_project_times_its_loop_on_an_idle_gpu(tmp_path, gating):
    """The speed benchmark's cuda_standalone project (analysis/speed/brian2_builds.py): both gatings generate CUDA kernels,
    and main.cu reads the GPU memory before the arrays and times the loop between two cudaDeviceSynchronize
    (brian2cuda's own timer does not wait for the GPU)."""
    from astrogate.analysis import speed

    variant = speed.cuda_variant(gating=gating)
    _, build_dir, _, _ = speed.build_standalone_project(30, 20, variant, 1000, str(tmp_path), compile=False)
    files = project_files(build_dir)
    main_cu = files["main.cu"]
    # the Network's name is numbered (network_1) after others in the same process
    order = [re.search(pattern, main_cu).start() for pattern in (
        r"_astrogate_context_used = ", r"brian_start\(\);", r"clock_gettime\(CLOCK_MONOTONIC, &_astrogate_start\)",
        r"\bnetwork\w*\.run\(", r"clock_gettime\(CLOCK_MONOTONIC, &_astrogate_end\)", re.escape(speed.CUDA_RUN_FILE))]
    assert order == sorted(order)
    assert main_cu.count("cudaDeviceSynchronize()") >= 3
    kernels = [name for name, text in files.items() if name.endswith(".cu") and "__global__" in text]
    assert any(name.startswith("agm_overlap_summed_variable") for name in kernels), sorted(kernels)
    # the cpp-only parallel-sum template is not used on cuda_standalone
    assert not any("_partial_sums" in text for name, text in files.items() if "summed_variable" in name)


@pytest.mark.nvcc
def test_speed_benchmark_cuda_project_compiles_with_nvcc(tmp_path):
    from astrogate.analysis import speed

    _, build_dir, built, compiled = speed.build_standalone_project(30, 20, speed.cuda_variant(gating="wired"), 1000,
                                                                   str(tmp_path), compile=True)
    assert (build_dir / "main").stat().st_size > 100_000 and compiled > 0


def calcium_memories_project(tmp_path, compile: bool, with_spiking: bool = True):
    """Memories with calcium astrocytes in the user's Network with a monitor, as a cuda_standalone project: rate
    neurons with a shared pool and ring gap junctions, and (with_spiking) Poisson neurons with private pools.
    Returns (project folder, the first and the last memory's names)."""
    import brian2 as b2
    from brian2 import second, umolar

    from astrogate.network import devices
    from astrogate.network.calcium import CalciumSetup
    from astrogate.network.memory import AstrocyteGatedMemory

    build = devices.activate(devices.DeviceChoice("cuda_standalone", build_root=tmp_path, compute_capability=8.0),
                             0.01)
    rng = np.random.default_rng(0)
    xi = rng.choice([-1.0, 1.0], size=(5, 16))
    options = dict(tau_u=1.0, gamma=3.0, kappa=1.0, cue_scale=1.0, dt=0.01)
    ring = CalciumSetup(gap_junctions="ring", parameters={"speedup": 1000.0, "F_GJ": 2 * umolar / second})
    rate = AstrocyteGatedMemory(xi, astrocyte="calcium", calcium=ring, **options)
    memories = [rate]
    if with_spiking:
        memories.append(AstrocyteGatedMemory(xi, astrocyte="calcium", calcium=CalciumSetup(pool="private"),
                                             neuron="poisson", nu_max=2000.0, tau_r=2.0, **options))
    for memory, pattern in zip(memories, xi):
        memory.set_cue(pattern)
    net = b2.Network(*memories, b2.StateMonitor(rate.astrocytes, ["g", "C"], record=True))
    net.run(2 * b2.ms)
    b2.device.build(directory=str(build), compile=compile, run=False, with_output=False)
    return build, rate.name, memories[-1].name


def test_cuda_code_is_generated_for_the_memory_with_calcium_astrocytes(tmp_path):
    """The calcium astrocytes' updates become CUDA kernels: the G-ChI integration, the release store, the pool's
    exact gain step and its hub, the gap junctions' and the pool's sums; spikes reach the overlaps on the GPU."""
    build, rate, spiking = calcium_memories_project(tmp_path, compile=False)
    files = project_files(build)
    kernels = [name for name, text in files.items() if name.endswith(".cu") and "__global__" in text]
    for part in (f"{rate}_astrocytes_stateupdater", f"{rate}_store", f"{rate}_gains", f"{rate}_hub_exposure",
                 f"{rate}_pool_summed_variable_bound_post", f"{rate}_gap_junctions_summed_variable_J_coupling_post",
                 f"{rate}_overlap_summed_variable_m_post", f"{rate}_output_summed_variable_I_rec_post",
                 f"{spiking}_astrocytes_stateupdater", f"{spiking}_gains", f"{spiking}_neurons_spike_thresholder"):
        assert any(name.startswith(part) for name in kernels), part
    assert not any(name.startswith(f"{spiking}_hub") for name in kernels)  # private pools: no hub
    header = files["objects.h"]
    for synapses in ("overlap", "output", "pool", "gap_junctions"):
        assert f"{rate}_{synapses}_multiple_pre_post" in header, synapses
    gains = next(text for name, text in files.items() if name.startswith(f"{rate}_gains") and name.endswith(".cu"))
    assert "exposure" in gains and "exp(" in gains  # the exact step, not an Euler one
    assert any("curand" in text for name, text in files.items() if name.endswith(".cu"))  # the Poisson draws


@pytest.mark.nvcc
def test_cuda_project_of_calcium_memories_compiles_with_nvcc(tmp_path):
    # one memory: the spiking one adds its kernels to the generated code (checked above), and minutes to nvcc
    build, _, _ = calcium_memories_project(tmp_path, compile=True, with_spiking=False)
    assert (build / "main").stat().st_size > 100_000
