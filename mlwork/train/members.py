"""Who a run trains — one model or a population — and every way the two differ, in one place.

A population (``config.is_population``) is the same run with a leading member axis on every
leaf of its state. Members differ by seed and optionally by learning rate and decoupled weight
decay, which live in each member's optimizer state (:func:`mlwork.optim.set_hyperparams`), so
one vmapped program trains them all, and member k ends where training it alone ends (to float32
tolerance: vmap batches the matrix products). On a CPU the members train in vmapped blocks
sized to the last-level cache, one block after another in the same program
(``mlwork.train.hardware.member_block()``). A population runs on one device, in one process;
data parallelism (:mod:`mlwork.train.parallel`) is for single models.

The rest of the trainer (:mod:`~mlwork.train.programs`, :mod:`~mlwork.train.loop`,
:mod:`~mlwork.train.lifecycle`) asks :class:`Members` (``run.who``) instead of branching on
which of the two it holds. A single model counts as one member wherever metrics are handled per
member.

What a checkpoint holds (:meth:`Members.checkpoint_tree`): a single model's
:class:`~mlwork.train.TrainState`; for a population, ``{"state": TrainState (batched),
"best_params", "best_model_state"}`` — each member's parameters at its best validation epoch,
which the test evaluation and the ensemble use. A single model's best is its best checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from mlwork import optim
from mlwork.train import parallel
from mlwork.train.config import Member, TrainConfig
from mlwork.train.errors import RunError
from mlwork.train.hardware import member_block
from mlwork.train.state import TrainState
from mlwork.train.step import epoch_order


class Members(NamedTuple):
    """Who a run trains — one model (``members=None``) or a population — and everything that
    differs between the two, in one place: the programs, the loop and the lifecycle ask it
    instead of branching.

    A population's state has a leading member axis on every leaf; a single model's has none, and
    counts as one member wherever metrics are handled per member.

    Attributes:
      members: the population's :class:`~mlwork.train.config.Member` list, or ``None``.

    Example:
      >>> import numpy as np
      >>> from mlwork.train.config import Member
      >>> from mlwork.train.members import Members
      >>> single, pop = Members(None), Members([Member(0, 1e-3, 0.0), Member(1, 1e-3, 0.0)])
      >>> single.count, pop.count, float(pop.split({"loss": np.array([0.5, 0.7])})[1]["loss"]), single.head(3, 0)
      (1, 2, 0.7, {'epoch': 3})
      >>> single.checkpoint_tree("state"), sorted(pop.checkpoint_tree({"params": 1}, best=(2, 3)))
      ('state', ['best_model_state', 'best_params', 'state'])
    """

    members: list[Member] | None

    @classmethod
    def of(cls, config: TrainConfig) -> Members:
        """The members ``config`` trains (:meth:`~mlwork.train.TrainConfig.members` for a population)."""
        return cls(config.members() if config.is_population else None)

    # -- counting and naming ------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Members in the state (1 for a single model)."""
        return 1 if self.members is None else len(self.members)

    @property
    def population(self) -> int | None:
        """Members in the state's leading axis, ``None`` for a single model."""
        return None if self.members is None else len(self.members)

    @property
    def kind(self) -> str:
        """What the run trains in words, ``"a single model"`` or ``"a population"``."""
        return "a single model" if self.members is None else "a population"

    def tag(self, text: str) -> str:
        """``text`` with ``{}`` replaced by the member count for a population; ``""`` for a single model."""
        return "" if self.members is None else text.format(len(self.members))

    def index(self, i: int) -> int | None:
        """Member ``i`` as error messages name it: ``None`` for a single model."""
        return None if self.members is None else i

    def describe(self, i: int | None) -> str:
        """Member ``i``'s seed and hyperparameters in words (``""`` for a single model)."""
        return "" if self.members is None or i is None else "seed {}, lr {:g}, weight_decay {:g}".format(
            *self.members[i])

    def head(self, epoch: int, i: int) -> dict[str, Any]:
        """The first fields of member ``i``'s ``metrics.jsonl`` row."""
        return {"epoch": epoch} if self.members is None else {"epoch": epoch, "member": i,
                                                              **self.members[i]._asdict()}

    def record(self) -> dict[str, Any]:
        """What ``config.json`` records of the members: ``{"members": [...]}``, or ``{}`` for a single model."""
        return {} if self.members is None else {"members": [m._asdict() for m in self.members]}

    # -- the member axis on host and device values --------------------------------------------

    def scalar(self, x: Any) -> int:
        """An int of a per-member counter that all members share (``state.step``, ``state.epoch``)."""
        return int(x) if self.members is None else int(x[0])

    def first(self, tree: Any) -> Any:
        """The first member's leaves (a single model's as they are)."""
        return tree if self.members is None else jax.tree.map(lambda x: x[0], tree)

    def split(self, tree: Any) -> list[Any]:
        """Host values as one entry per member (a single model's get a list of one)."""
        if self.members is None:
            return [tree]
        return [jax.tree.map(lambda x, i=i: np.asarray(x)[i], tree) for i in range(len(self.members))]

    def unsplit(self, entries: Sequence[Any]) -> Any:
        """The inverse of :meth:`split`: a single model's one entry, a population's list."""
        return entries[0] if self.members is None else list(entries)

    @property
    def lead(self) -> tuple[int, ...]:
        """The member axis of a batched value's shape, ``(K,)`` (``()`` for a single model)."""
        return () if self.members is None else (len(self.members),)

    def vmap(self, fn: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
        """``fn`` over the member axis (``jax.vmap``), or ``fn`` itself for a single model."""
        return fn if self.members is None else jax.vmap(fn, **kwargs)

    def epoch_orders(self, rng: jax.Array, epoch: Any, n: int, batch_size: int) -> jax.Array:
        """:func:`~mlwork.train.step.epoch_order` of the state's key data ``rng``: int32
        ``(*lead, n // batch_size, batch_size)``, each member's for a population."""
        return (_orders_one if self.members is None else _orders_each)(rng, epoch, n, batch_size)

    # -- devices ------------------------------------------------------------------------------

    def devices(self, requested: int | None) -> int | None:
        """The devices to train on: ``requested`` for a single model, one for a population.

        Raises:
          RunError: a population in a multi-process job.
        """
        if self.members is None:
            return requested
        if jax.process_count() > 1:
            raise RunError(f"a population trains in one process; this job has {jax.process_count()} (data "
                           "parallelism over processes is for single models)")
        return 1

    def check_tx(self, tx: Any) -> None:
        """Refuse a custom optimizer for a population (its per-member hyperparameters live in mlwork's own).

        Raises:
          RunError: ``tx`` is given for a population.
        """
        if self.members is not None and tx is not None:
            raise RunError("a population trains mlwork's optimizer (its members' learning rates and weight decays "
                           "live in its state); a custom tx is for single models")

    def data_mesh(self, mesh: Mesh) -> Mesh | None:
        """The mesh a step splits its batches over: ``mesh`` for a single model, ``None`` for a
        population (vmapped on one device)."""
        return mesh if self.members is None else None

    def put_batches(self, xs: np.ndarray, ys: np.ndarray, mesh: Mesh, batch_size: int
                    ) -> tuple[jax.Array, jax.Array]:
        """A streamed chunk's host batches on the device(s): for a single model, each process's
        part of every batch assembled into the global ``(L, B, ...)`` arrays split over ``mesh``
        (:func:`~mlwork.train.parallel.streamed_batch_sharding`); a population's ``(K, L, B, ...)``
        on its one device."""
        if self.members is None:
            sharding = parallel.streamed_batch_sharding(mesh)
            return tuple(jax.make_array_from_process_local_data(sharding, a, (a.shape[0], batch_size, *a.shape[2:]))
                         for a in (xs, ys))
        return jax.device_put(xs), jax.device_put(ys)

    # -- state, checkpoints, best -------------------------------------------------------------

    def init_state(self, create: Callable[[jax.Array], TrainState], seed: int, lr: float, mesh: Mesh
                   ) -> TrainState:
        r"""A fresh state from ``create(key)``: a single model's seeded by ``seed`` and replicated
        over ``mesh``; a population's stacked on a leading axis, member :math:`k` seeded by its own
        seed, with its learning-rate scale :math:`\eta_k / \eta` (``lr`` is :math:`\eta`) and weight
        decay in its optimizer state (:func:`mlwork.optim.set_hyperparams`)."""
        if self.members is None:
            return parallel.put_replicated(create(jax.random.key(seed)), mesh)
        keys = jnp.stack([jax.random.key(m.seed) for m in self.members])
        states = jax.vmap(create)(keys)
        scale = jnp.asarray([m.lr / lr for m in self.members], jnp.float32)
        decay = jnp.asarray([m.weight_decay for m in self.members], jnp.float32)
        return states._replace(opt_state=optim.set_hyperparams(states.opt_state, lr_scale=scale, weight_decay=decay))

    def checkpoint_tree(self, state: TrainState, best: tuple[Any, Any] | None = None) -> Any:
        """What a checkpoint of ``state`` holds (see the module docstring); a population's best
        defaults to copies of the state's variables."""
        if self.members is None:
            return state
        best_params, best_model_state = best if best is not None else jax.tree.map(jnp.copy, (state.params,
                                                                                             state.model_state))
        return {"state": state, "best_params": best_params, "best_model_state": best_model_state}

    def split_tree(self, tree: Any) -> tuple[TrainState, tuple[Any, Any] | None]:
        """The inverse of :meth:`checkpoint_tree`: ``(state, best or None)``."""
        if self.members is None:
            return tree, None
        return tree["state"], (tree["best_params"], tree["best_model_state"])

    def initial_best(self, state: TrainState, best: tuple[Any, Any] | None) -> tuple[Any, Any] | None:
        """A population's best so far: ``best``, or copies of the state's variables (the compiled
        calls donate the state's buffers); ``None`` for a single model."""
        if self.members is None or best is not None:
            return best
        return jax.tree.map(jnp.copy, (state.params, state.model_state))

    def keep_best(self, improved: jax.Array, state: TrainState, best: tuple[Any, Any] | None, stop: Any
                  ) -> tuple[tuple[Any, Any] | None, Any]:
        """``(best, stop)`` after an epoch: each member of a population keeps its variables from the
        epochs where its monitored metric ``improved`` (bool ``(K,)``) and never stops early; a
        single model's best is its best checkpoint, and ``stop`` stands."""
        if self.members is None:
            return best, stop

        def keep(new, old):
            return jax.tree.map(lambda n, o: jnp.where(improved.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, old)

        return (keep(state.params, best[0]), keep(state.model_state, best[1])), False

    def stops_early(self, patience: int | None) -> bool:
        """Whether early stopping applies: a single model with a ``patience``."""
        return patience is not None and self.members is None

    def best_variables(self, manager: Any, state: TrainState, best: tuple[Any, Any] | None
                       ) -> tuple[tuple[Any, Any], int | None, float | None]:
        """``((params, model_state), best epoch, best monitored validation value)`` to test: a
        single model's best checkpoint in ``manager``; a population's ``best`` (each member's best
        epoch; no single epoch or value, ``None``)."""
        if self.members is not None:
            return best, None, None
        from mlwork.train import checkpoint as ckpt

        step = ckpt.best_step(manager)
        best_state, _ = ckpt.restore(manager, self.checkpoint_tree(state), step)
        return ((best_state.params, best_state.model_state), ckpt.epoch_of(manager, step),
                float(best_state.early_stopping.best))

    def ensemble_figures(self, run: Any, variables: tuple[Any, Any]) -> dict[str, float]:
        """A population's ensemble on ``run.test`` (:func:`~mlwork.train.ensemble.ensemble_metrics`):
        ``ensemble_<metric>`` and ``ensemble_loss``; ``{}`` for a single model."""
        if self.members is None:
            return {}
        from mlwork.train.ensemble import ensemble_metrics

        return ensemble_metrics(run, *variables, *run.test)

    # -- compiled programs --------------------------------------------------------------------

    def block(self, state: TrainState, block: int | None = None) -> int | None:
        """A population's members per vmapped block: ``block``, or by default
        :func:`~mlwork.train.hardware.member_block` for ``state``'s size; ``None`` for a single model.

        Raises:
          RunError: a ``block`` outside ``[1, population]``.
        """
        if self.members is None:
            return None
        k = len(self.members)
        block = member_block(_state_bytes_per_member(state), k) if block is None else int(block)
        if not 1 <= block <= k:
            raise RunError(f"member block must be between 1 and the population size {k}, got {block}")
        return block

    def jit(self, fn: Callable[..., Any], batched: Sequence[bool], shardings: Sequence[Any], *,
            block: int | None = None, donate: bool = True) -> Any:
        """``fn(*args)`` over the members, jitted (the first argument donated when ``donate``).

        A single model's ``fn`` as it is, its arguments and outputs placed by ``shardings`` (the
        outputs as the first argument). A population's over the leading member axis of the
        arguments marked ``batched`` (the others shared): ``jax.vmap`` when ``block`` is
        ``None`` or the whole population, else vmapped blocks of ``block`` members one after
        another (``jax.lax.map`` with ``batch_size=block``).
        """
        donate_argnums = (0,) if donate else ()
        if self.members is None:
            return jax.jit(fn, donate_argnums=donate_argnums, in_shardings=tuple(shardings),
                           out_shardings=shardings[0])
        if block is None or block == len(self.members):
            return jax.jit(jax.vmap(fn, in_axes=tuple(0 if b else None for b in batched)),
                           donate_argnums=donate_argnums)

        mapped = [i for i, b in enumerate(batched) if b]

        def blocks(*args):
            def one(xs):
                full = list(args)
                for i, x in zip(mapped, xs, strict=True):
                    full[i] = x
                return fn(*full)

            return jax.lax.map(one, tuple(args[i] for i in mapped), batch_size=block)

        return jax.jit(blocks, donate_argnums=donate_argnums)


def _state_bytes_per_member(state: TrainState) -> int:
    """Parameters, optimizer state and (as much again as the parameters) gradients, per member."""
    k = int(state.step.shape[0])
    nbytes = lambda tree: sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))  # noqa: E731
    return max(1, (2 * nbytes(state.params) + nbytes(state.opt_state)) // k)


def _order(rng: jax.Array, epoch: Any, n: int, batch_size: int) -> jax.Array:
    return epoch_order(jax.random.wrap_key_data(rng), epoch, n, batch_size)


_orders_one = jax.jit(_order, static_argnums=(2, 3))
_orders_each = jax.jit(lambda rng, epoch, n, batch_size: jax.vmap(lambda r: _order(r, epoch, n, batch_size))(rng),
                       static_argnums=(2, 3))
