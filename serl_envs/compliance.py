"""Cartesian impedance parameters, shared by the sim controller and the real backends."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Compliance:
    """The real Franka impedance controller's parameters (SERL's COMPLIANCE_PARAM).

    The clip bounds the equilibrium-pose error per axis, which caps the spring force at stiffness * clip: the
    contact-safety mechanism of SERL's controller.
    """

    translational_stiffness: float = 2000.0  # N/m
    translational_damping: float = 89.0  # N s/m
    rotational_stiffness: float = 150.0  # Nm/rad
    rotational_damping: float = 7.0  # Nm s/rad
    translational_clip: tuple[float, float, float] = (0.02, 0.02, 0.02)  # m, per base axis
    rotational_clip: tuple[float, float, float] = (0.1, 0.1, 0.1)  # rad, per axis
    nullspace_stiffness: float = 5.0  # Nm/rad, pulls the elbow towards the ready posture

    def __post_init__(self) -> None:
        for name in ("translational_stiffness", "translational_damping", "rotational_stiffness", "rotational_damping"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Compliance.{name} must be > 0, got {getattr(self, name)}")
        for name in ("translational_clip", "rotational_clip"):
            clip = getattr(self, name)
            if len(clip) != 3 or any(not c > 0 for c in clip):
                raise ValueError(f"Compliance.{name} must be three positive values, got {clip}")
        if self.nullspace_stiffness < 0:
            raise ValueError(f"Compliance.nullspace_stiffness must be >= 0, got {self.nullspace_stiffness}")
