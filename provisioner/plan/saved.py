"""A plan saved by ``plan --out``, read back for ``apply PLAN``."""

from __future__ import annotations

import json
from pathlib import Path

from provisioner.errors import ProvisionerError
from provisioner.plan.model import Plan


class SavedPlanError(ProvisionerError):
    pass


def load_saved_plan(path: str) -> Plan:
    try:
        return Plan.from_dict(json.loads(Path(path).read_text()))
    except FileNotFoundError:
        raise SavedPlanError(f"{path}: no such plan file") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise SavedPlanError(
            f"{path}: not a plan saved by 'provision plan --out' ({exc})"
        ) from None
