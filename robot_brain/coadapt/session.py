"""A co-adaptation session: trials of shared control with one user, and what is learned from them.

Each slow tick of a trial (:meth:`CoadaptSession.trial`):

1. **sensing**: the human's input, through the :class:`~.sensing.InputGuard`;
2. **joint action**: the goal belief folds it in (:class:`~.belief.GoalBelief`);
3. **prediction**: the human's next input is predicted from the belief (logged as a check of
   the belief), and in ``hindsight`` mode the arm's response to each candidate command under
   the current impedance (:mod:`.prediction`);
4. the arbiter blends the human and the robot (:class:`~.arbitration.Arbiter`), and the task
   executes the command through the two-rate loop: the reflex checks every fast tick of it.

After the trial, **memory**: the user's profile learns the goal they chose (Hebbian counts), their
rationality (``beta`` fitted to the trial's inputs) and their own error, which sets the next
trial's assistance ceiling (assist-as-needed); it is saved atomically.

The session reads the trial's intended goal only to score it and, afterwards, to learn from it
(the goal the person was asked to reach, as in shared-autonomy user studies); the arbitration
never sees it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from robot_brain.params import param, validate

from .arbitration import Arbiter, ArbitrationConfig, AssistAsNeeded
from .belief import GoalBelief, cosines, fit_beta
from .memory import ProfileStore, UserProfile
from .prediction import ArmForwardModel, HumanInputPredictor
from .sensing import HumanInput, HumanView, InputGuard

__all__ = ["CoadaptSession", "SessionConfig", "TrialRecord", "human_error"]


@dataclass(frozen=True)
class SessionConfig:
    """Settings of a session besides the arbitration's and the schedule's.

    :param stiffness: the normalised stiffness action of every command (0.5: about 1 kN/m on
        ``reach-shared``'s range; stiff enough to track the blend, soft enough to yield).
    :param beta_memory: share of the user's previous rationality kept when a trial's fit comes in.
    :param adapt: learn the profile after each trial (off: a fixed profile, for baselines).
    :param floor: the belief's floor (see :class:`~.belief.GoalBelief`).
    """

    stiffness: float = param(0.5, "normalised stiffness action of every command", low=-1.0, high=1.0)
    beta_memory: float = param(0.6, "share of the previous rationality kept per trial", low=0.0, high=1.0)
    adapt: bool = param(True, "learn the profile after each trial", kind="bool")
    floor: float = param(0.01, "probability floor of every goal in the belief", low=0.0, high=0.1)

    def __post_init__(self) -> None:
        validate(self)


@dataclass
class TrialRecord:
    """What one trial measured (``robot-brain sim reach-shared --human ...`` prints these)."""

    trial: int
    seed: int
    goal: int  # the intended goal
    reached: int  # the goal reached (-1: none)
    success: bool
    time: float  # trial duration [s]
    effort: float  # integral of the human's input norm [s at full input]
    input_share: float  # share of ticks with human input
    assistance: float  # mean robot share of the command over ticks with input
    alpha_max: float  # the assistance ceiling of the trial
    accuracy: float  # share of ticks with the most probable goal = the intended one
    accuracy_half: bool | None  # most probable goal right when half the distance was covered
    disagreement: float  # share of input ticks pushing against the robot's approach
    authority_min: float  # the robot's lowest authority in the trial
    human_error: float | None  # the person's own error (see human_error)
    beta: float  # rationality used in the trial
    prediction: float | None  # mean cosine between the predicted and the actual next input
    violations: int
    interventions: int
    rejected_inputs: int  # inputs the guard refused (NaN, absurd, source errors)
    stalled_ticks: int  # ticks with the source silent beyond the guard's timeout
    max_command_step: float = 0.0  # largest tool displacement in one tick [m]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def human_error(samples: list[tuple[np.ndarray, np.ndarray]], goal: np.ndarray) -> float | None:
    """The person's own error in a trial: mean ``1 - cos`` between their input and the direction
    to ``goal`` over inputs of norm > 0.05 (``None`` without such input). It measures the person,
    not the help: assistance changes where the tool goes, not where they point."""
    errs = [1.0 - float(cosines(tool, u, goal[None])[0]) for tool, u in samples
            if np.linalg.norm(u) > 0.05 and np.linalg.norm(goal - tool) > 0.01]
    return float(np.mean(errs)) if errs else None


class CoadaptSession:
    """Trials of shared control of a ``reach-shared`` task with one user.

    :param env: the task env (``robot_brain.envs.make("reach-shared", ...)``, possibly wrapped).
    :param human: the input source.
    :param profile: the user's profile (:class:`~.memory.UserProfile`); updated after each trial
        when ``config.adapt``, and saved to ``store`` when given.
    :param on_tick: called after every slow tick (the viewer syncs and paces itself here).
    """

    def __init__(self, env: Any, human: HumanInput, profile: UserProfile, *,
                 store: ProfileStore | None = None, config: SessionConfig | None = None,
                 arbitration: ArbitrationConfig | None = None, schedule: AssistAsNeeded | None = None,
                 guard: InputGuard | None = None, on_tick: Callable[[], None] | None = None) -> None:
        self.env, self.task = env, env.unwrapped
        if not hasattr(self.task, "goals") or not hasattr(self.task, "intended"):
            raise ValueError(f"co-adaptation needs a task with candidate goals (reach-shared), got "
                             f"{getattr(self.task, 'name', type(self.task).__name__)!r}")
        self.human, self.profile, self.store = human, profile, store
        self.config = config or SessionConfig()
        self.schedule = schedule or AssistAsNeeded()
        self.guard = guard or InputGuard()
        self.on_tick = on_tick
        cfg = self.task.config
        self.dt = 1.0 / cfg.policy_hz
        self.step_m = cfg.max_step
        self.speed = cfg.max_step * cfg.policy_hz  # top tool speed [m/s]
        self.arbiter = Arbiter(arbitration, step=self.step_m, dt=self.dt)
        self.predictor = HumanInputPredictor()
        self.records: list[TrialRecord] = []

    # -- one trial ----------------------------------------------------------------------------
    def _arm_predictor(self) -> Callable[[np.ndarray], np.ndarray]:
        """Tool positions one slow tick after each candidate command (N, 3), from the arm's
        forward model under the session's stiffness (the prediction module)."""
        task = self.task
        model = ArmForwardModel.from_robot(task.robot)
        k = float(task.stiffness_from_action(np.array([self.config.stiffness]))[0])
        state = task.state
        x, v = state.ee_pos.copy(), state.ee_vel[:3].copy()

        def predict(cands: np.ndarray) -> np.ndarray:
            targets = x + np.clip(cands, -1, 1) * self.step_m
            return np.array([model.predict(x, v, t, np.full(3, k), task.config.damping_ratio,
                                           self.dt, 1)[-1] for t in targets])
        return predict

    def trial(self, index: int, seed: int, goal: int | None = None) -> TrialRecord:
        """Run trial ``index`` (episode seed ``seed``; ``goal``: the intended goal, else the
        human's choice when the source can choose (the simulated human), else drawn)."""
        task, human, profile = self.task, self.human, self.profile
        k = len(task.goals)
        chooser = getattr(human, "choose_goal", None)
        if goal is None and chooser is not None:
            goal = int(chooser(k))
        self.env.reset(seed=seed, options=None if goal is None else {"goal": goal})
        goal = int(task.intended)
        if hasattr(human, "set_goal"):
            human.set_goal(goal)
        human.reset(index)
        self.guard.reset()
        self.arbiter.reset()
        self.predictor.reset()
        goals = task.goals.copy()
        belief = GoalBelief(goals, profile.goal_prior(k), beta=profile.beta, floor=self.config.floor)
        alpha_max = float(profile.alpha_max)
        start = task.state.ee_pos.copy()
        half = 0.5 * float(np.linalg.norm(goals[goal] - start))
        hindsight = self.arbiter.config.mode == "hindsight"

        samples: list[tuple[np.ndarray, np.ndarray]] = []
        n = n_input = right = disagree = stalled = 0
        alphas: list[float] = []
        pred_cos: list[float] = []
        effort = 0.0
        authority_min = 1.0
        accuracy_half: bool | None = None
        max_move = 0.0
        violations = interventions = 0
        stiffness = np.full(3, self.config.stiffness)
        t0 = task.state.t
        info: dict[str, Any] = {}
        done = False
        while not done:
            tool = task.state.ee_pos.copy()
            view = HumanView(t=task.state.t - t0, tool=tool, goals=goals, speed=self.speed)
            u = self.guard.read(human, view)
            expected = self.predictor.predict(tool, goals, belief.probs)
            belief.update(tool, u)
            if u is not None:
                self.predictor.observe(u)
                if np.linalg.norm(u) > 0.05 and np.linalg.norm(expected) > 1e-6:
                    pred_cos.append(float(u @ expected / (np.linalg.norm(u) * np.linalg.norm(expected))))
            if accuracy_half is None and np.linalg.norm(goals[goal] - tool) <= half:
                accuracy_half = belief.map_goal == goal
            decision = self.arbiter.decide(tool, u, belief, alpha_max,
                                           self._arm_predictor() if hindsight and u is not None else None)
            action = np.concatenate([decision.command, stiffness]).astype(np.float32)
            _, _, terminated, truncated, info = self.env.step(action)
            done = bool(terminated or truncated)
            n += 1
            right += int(belief.map_goal == goal)
            stalled += int(self.guard.stalled)
            authority_min = min(authority_min, decision.authority)
            max_move = max(max_move, float(np.linalg.norm(task.state.ee_pos - tool)))
            violations += int(info.get("cost", 0.0) > 0)
            interventions += int(info.get("interventions", 0))
            if u is not None:
                n_input += 1
                samples.append((tool, u))
                effort += float(np.linalg.norm(u)) * self.dt
                alphas.append(decision.alpha)
                disagree += int(decision.disagree)
            if self.on_tick is not None:
                self.on_tick()
        reached = int(info.get("reached", -1))
        # What the person was heading for, in hindsight: the goal reached, else the instructed one.
        target = reached if reached >= 0 else goal
        error = human_error(samples, goals[target])
        record = TrialRecord(
            trial=index, seed=seed, goal=goal, reached=reached, success=reached == goal,
            time=task.state.t - t0, effort=effort, input_share=n_input / max(n, 1),
            assistance=float(np.mean(alphas)) if alphas else 0.0, alpha_max=alpha_max,
            accuracy=right / max(n, 1), accuracy_half=accuracy_half,
            disagreement=disagree / max(n_input, 1), authority_min=authority_min, human_error=error,
            beta=belief.beta, prediction=float(np.mean(pred_cos)) if pred_cos else None,
            violations=violations, interventions=interventions,
            rejected_inputs=sum(self.guard.rejected.values()), stalled_ticks=stalled,
            max_command_step=max_move)
        if self.config.adapt:
            self._learn(record, samples, target, k)
        self.records.append(record)
        return record

    # -- memory -------------------------------------------------------------------------------
    def _learn(self, record: TrialRecord, samples: list[tuple[np.ndarray, np.ndarray]], target: int,
               k: int) -> None:
        """Update and save the profile after a trial (see module docstring)."""
        p = self.profile
        fitted = fit_beta(samples, self.task.goals, target, floor=self.config.floor)
        if fitted is not None:
            m = self.config.beta_memory
            p.beta = float(math.exp(m * math.log(p.beta) + (1 - m) * math.log(fitted)))
        if record.reached >= 0:  # a goal the person reached, whichever it was, is their choice
            p.record_goal(target, k)
        if record.human_error is not None:
            p.record_error(record.human_error)
        p.alpha_max = self.schedule.update(p.alpha_max, record.human_error)
        p.trials += 1
        if self.store is not None:
            self.store.save(p)

    def run(self, trials: int, seed: int = 0,
            on_trial: Callable[[TrialRecord], None] | None = None) -> list[TrialRecord]:
        """``trials`` trials (trial i seeded ``seed + i``); the records."""
        out = []
        for i in range(trials):
            rec = self.trial(len(self.records), seed + i)
            out.append(rec)
            if on_trial is not None:
                on_trial(rec)
        return out
