"""The retreat at a remembered wall (robot_brain.safety.retreat, case 1): ``retreat`` outside the
wall against a push, ``wall_retreat`` against the arm's own press, as the critic file chooses.
Unit cases, then the effect on real MuJoCo episodes (the maze, walls shifted 4 cm, the shipped
critic)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_brain.controllers import Command, RobotState
from robot_brain.safety.features import ContactMemory
from robot_brain.safety.retreat import RetreatConfig, retreat_and_soften

WALL_Y = 0.1  # a wall facing +y: the tool touched it at y = 0.1


def _state(vel: tuple[float, float, float] = (0.0, 0.0, 0.0),
           force: tuple[float, float, float] = (0.0, 0.0, 0.0), y: float = WALL_Y + 0.0005) -> RobotState:
    return RobotState(t=0.0, q=np.zeros(7), dq=np.zeros(7), tau=np.zeros(7),
                      ee_pos=np.array([0.5, y, 0.1]), ee_quat=np.array([1.0, 0, 0, 0]),
                      ee_vel=np.array([*vel, 0.0, 0.0, 0.0]), wrench=np.array([*force, 0.0, 0.0, 0.0]))


def _behind_the_wall() -> Command:
    """The task's setpoint 2 cm behind the wall (the scripted command at a shifted wall)."""
    return Command(np.full(6, 1000.0), np.full(6, 1.0), np.array([0.5, WALL_Y - 0.02, 0.1]),
                   np.array([1.0, 0, 0, 0]))


def _remembered() -> ContactMemory:
    """Touched the wall (10 N along +y), then 0.1 s without contact: the held force has faded,
    the wall is remembered."""
    mem = ContactMemory()
    mem.update(_state(force=(0.0, 10.0, 0.0), y=WALL_Y))
    for _ in range(100):
        mem.update(_state())
    return mem


@pytest.mark.parametrize("vel, near", [
    ((0.0, 0.0, 0.0), True),     # at rest against it
    ((0.0, -0.03, 0.0), True),   # moving with its own spring's pull, into the wall
    ((0.05, 0.0, 0.0), False),   # moving across the pull: a push, not the arm's doing
])
def test_against_its_own_press_the_retreat_stays_near_the_wall(vel, near):
    config = RetreatConfig(wall_retreat=0.003)
    sp = _behind_the_wall()
    out = retreat_and_soften(_state(vel=vel), sp, sp.copy(), config, memory=_remembered().state)
    assert out.position is not None
    gap = out.position[1] - WALL_Y  # the setpoint's distance outside the wall
    assert gap == pytest.approx(config.wall_retreat if near else config.retreat, abs=1e-9)
    assert out.stiffness[1] == config.soft_stiffness  # softened either way


def test_wall_retreat_is_a_validated_setting_and_by_default_the_retreat():
    assert RetreatConfig(wall_retreat=0.0).params()[10] == 0.0
    assert RetreatConfig().wall_retreat == RetreatConfig().retreat  # unchanged unless asked
    for bad in (-0.001, 0.06, float("nan")):
        with pytest.raises(ValueError, match="wall_retreat"):
            RetreatConfig(wall_retreat=bad)


def test_the_critic_file_chooses_the_wall_retreat():
    from robot_brain.critic_training.rate_ablation import MAZE_CRITIC
    from robot_brain.safety import CriticReflex, load_critic

    maze = load_critic(MAZE_CRITIC)
    assert maze.wall_retreat == 0.003  # critic.json
    assert CriticReflex(maze).retreat.wall_retreat == 0.003
    assert CriticReflex(maze, retreat=RetreatConfig()).retreat.wall_retreat == 0.01  # explicit wins
    peg = load_critic(MAZE_CRITIC.parent / "peg-insertion")
    assert peg.wall_retreat is None and CriticReflex(peg).retreat == RetreatConfig()


def test_a_short_wall_retreat_spares_a_tool_stuck_at_a_shifted_wall_the_bounce():
    """Maze, walls shifted 4 cm, seeds 24003 and 25001: the scripted command holds the tool
    pressed against a shifted wall for the rest of the episode. The limits alone leave it resting
    there and retreat when the press reaches 10 N. The critic, with the full 1 cm wall retreat,
    lifted it off before contact; the next command's ramp threw it back across the gap, and now
    and then the impact passed the 15 N limit (a bounce every slow step). A 3 mm wall retreat
    keeps it near the wall: the limits' violations. Measured with wall-soften on risk alone
    (``margin`` 0); with the shipped prior wall-soften answers these presses itself."""
    from robot_brain.critic_training.rate_ablation import MAZE_CRITIC
    from robot_brain.envs import Disturbances, make
    from robot_brain.policies import make_policy
    from robot_brain.rollout import run_episode
    from robot_brain.safety import CriticReflex, LimitsReflex, load_critic
    from robot_brain.safety.recovery import BRACE_PRIOR

    env = make("maze", disturbances=Disturbances(wall_shift=0.04))
    task = env.unwrapped
    policy = make_policy("scripted", env)
    out: dict[str, float] = {}
    try:
        for name, retreat, margin in (
                ("limits", None, 0.0), ("1 cm", RetreatConfig(wall_retreat=0.01), 0.0),
                ("3 mm", None, 0.0),  # the maze critic file's wall retreat
                ("shipped", None, BRACE_PRIOR)):
            total = 0.0
            for seed in (24003, 25001):
                limits = LimitsReflex(task.limits)
                task.set_shield(limits if name == "limits" else CriticReflex(
                    load_critic(MAZE_CRITIC), limits, retreat=retreat, margin=margin))
                total += run_episode(env, policy, seed).metrics["violations"]
            out[name] = total
    finally:
        env.close()
    # measured: limits 2, 1 cm 6, 3 mm 2, shipped (the prior) 2
    assert out["1 cm"] > out["limits"], out  # the bounce this fixes
    assert out["3 mm"] <= out["limits"], out
    assert out["shipped"] <= out["limits"], out
