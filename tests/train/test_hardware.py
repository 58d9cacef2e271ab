"""What mlwork adapts to the machine: XLA:CPU vector width and population block size."""

import pytest

from mlwork.train import hardware


def test_compiler_options_ask_for_512_bit_vectors_only_on_avx512_cpus(monkeypatch):
    monkeypatch.delenv("MLWORK_CPU_VECTOR_WIDTH", raising=False)
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setattr(hardware, "_has_avx512", lambda: True)
    assert hardware.compiler_options("cpu") == {"xla_cpu_prefer_vector_width": 512}
    assert hardware.compiler_options("gpu") == {} and hardware.compiler_options("tpu") == {}
    monkeypatch.setattr(hardware, "_has_avx512", lambda: False)
    assert hardware.compiler_options("cpu") == {}


def test_the_users_choice_wins(monkeypatch):
    monkeypatch.setattr(hardware, "_has_avx512", lambda: True)
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2 --xla_cpu_prefer_vector_width=256")
    assert hardware.compiler_options("cpu") == {}  # XLA_FLAGS already says; not overridden
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setenv("MLWORK_CPU_VECTOR_WIDTH", "256")
    assert hardware.compiler_options("cpu") == {"xla_cpu_prefer_vector_width": 256}
    monkeypatch.setenv("MLWORK_CPU_VECTOR_WIDTH", "1024")
    with pytest.raises(ValueError, match="MLWORK_CPU_VECTOR_WIDTH must be 128, 256 or 512, got '1024'"):
        hardware.compiler_options("cpu")


def test_compiler_options_compile_and_agree_with_the_default():
    import jax
    import jax.numpy as jnp
    import numpy as np

    x = jnp.linspace(-3.0, 3.0, 1000, dtype=jnp.float32)
    f = jax.jit(lambda x: jnp.tanh(x) * jnp.exp(-x * x))
    default = f.lower(x).compile()(x)
    for width in (128, 256, 512):
        out = f.lower(x).compile(compiler_options={"xla_cpu_prefer_vector_width": width})(x)
        np.testing.assert_allclose(np.asarray(out), np.asarray(default), rtol=1e-6, atol=1e-7)


def test_member_block_fits_half_the_cache():
    mib = 2**20
    # 3.8 MB per member (the MNIST MLP with Adam) and a 32 MiB cache: 4 members per block.
    assert hardware.member_block(int(3.8 * mib), 16, "cpu", cache_bytes=32 * mib) == 4
    assert hardware.member_block(int(3.8 * mib), 3, "cpu", cache_bytes=32 * mib) == 3  # at most K
    assert hardware.member_block(100 * mib, 16, "cpu", cache_bytes=32 * mib) == 1  # at least 1
    assert hardware.member_block(1, 16, "gpu", cache_bytes=1) == 16  # accelerators: lockstep
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="members must be a positive integer"):
            hardware.member_block(mib, bad, "cpu")
    with pytest.raises(ValueError, match="bytes_per_member must be positive"):
        hardware.member_block(0, 4, "cpu")


def test_cache_sizes_parse_like_sysfs():
    assert hardware._parse_size("32768K\n") == 32 * 2**20
    assert hardware._parse_size("1M") == 2**20 and hardware._parse_size("512") == 512
    assert hardware.last_level_cache_bytes() >= 2**10
