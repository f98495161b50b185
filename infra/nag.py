"""cdk-nag acknowledgements (cdk-nag 3 uses CDK's ``Validations.of(...).acknowledge``).

Every acknowledgement goes through :func:`acknowledge`, which refuses vague reasons: a reviewer
must be able to tell from the reason alone why the finding does not apply or is accepted.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

MIN_REASON_CHARS = 40
PACK = "AwsSolutions"


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge cdk-nag finding ``rule_id`` (e.g. ``AwsSolutions-IAM4[Policy::...]``) on
    ``scope`` and everything below it, for ``reason``.

    The id is recorded with the plugin prefix (``AwsSolutions::AwsSolutions-IAM4[...]``), the form
    the validation report asks for.
    """
    reason = " ".join(reason.split())
    if len(reason) < MIN_REASON_CHARS:
        raise ValueError(f"reason for {rule_id} is too short to be specific: {reason!r}")
    if not rule_id.startswith(f"{PACK}-"):
        raise ValueError(f"{rule_id!r} is not an {PACK} rule id")
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}::{rule_id}", reason=reason))
