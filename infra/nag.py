"""Acknowledged findings: cdk-nag (cdk-nag 3 uses CDK's ``Validations.of(...).acknowledge``) and
checkov (``Metadata: checkov: skip: [{id, comment}]`` on the CloudFormation resource).

Every acknowledgement goes through :func:`acknowledge` or :func:`skip_checkov`, which refuse vague
reasons: a reviewer must be able to tell from the reason alone why the finding does not apply or is
accepted. One :func:`acknowledge` call can carry a cdk-nag rule and the checkov checks that flag the
same thing, with the one reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from aws_cdk import Acknowledgment, CfnResource, Validations
from constructs import IConstruct

MIN_REASON_CHARS = 40
PACK = "AwsSolutions"
CHECKOV_METADATA_KEY = "checkov"


def _reason(rule_id: str, reason: str) -> str:
    reason = " ".join(reason.split())
    if len(reason) < MIN_REASON_CHARS:
        raise ValueError(f"reason for {rule_id} is too short to be specific: {reason!r}")
    return reason


def acknowledge(scope: IConstruct, rule_id: str, reason: str, *, checkov: str | Sequence[str] = ()) -> None:
    """Acknowledge cdk-nag finding ``rule_id`` (e.g. ``AwsSolutions-IAM4[Policy::...]``) on
    ``scope`` and everything below it, for ``reason``; with ``checkov``, also skip those checkov
    check ids (``CKV_AWS_...``) on ``scope``'s CloudFormation resource for the same reason.

    The id is recorded with the plugin prefix (``AwsSolutions::AwsSolutions-IAM4[...]``), the form
    the validation report asks for.
    """
    reason = _reason(rule_id, reason)
    if not rule_id.startswith(f"{PACK}-"):
        raise ValueError(f"{rule_id!r} is not an {PACK} rule id")
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}::{rule_id}", reason=reason))
    for check_id in [checkov] if isinstance(checkov, str) else checkov:
        skip_checkov(scope, check_id, reason)


def skip_checkov(scope: IConstruct, check_id: str, reason: str, *, resource_type: str | None = None) -> None:
    """Skip checkov check ``check_id`` on ``scope``'s CloudFormation resource for ``reason``.

    ``scope`` is a CfnResource or a construct whose default child is one; with ``resource_type``
    (``AWS::Lambda::Function``), every resource of that type at or below ``scope`` instead.
    """
    reason = _reason(check_id, reason)
    if not check_id.startswith("CKV"):
        raise ValueError(f"{check_id!r} is not a checkov check id")
    resources = list(_resources(scope, resource_type))
    if not resources:
        raise ValueError(f"no CloudFormation resource at {scope.node.path} to skip {check_id} on")
    for resource in resources:
        metadata = resource.get_metadata(CHECKOV_METADATA_KEY) or {}
        skips: list[dict[str, str]] = list(metadata.get("skip", []))
        if not any(skip["id"] == check_id for skip in skips):
            skips.append({"id": check_id, "comment": reason})
        resource.add_metadata(CHECKOV_METADATA_KEY, {**metadata, "skip": skips})


def _resources(scope: IConstruct, resource_type: str | None) -> Iterator[CfnResource]:
    if resource_type is not None:
        candidates: Iterable[IConstruct] = scope.node.find_all()
        yield from (
            c for c in candidates if isinstance(c, CfnResource) and c.cfn_resource_type == resource_type
        )
        return
    resource = scope if isinstance(scope, CfnResource) else scope.node.default_child
    if isinstance(resource, CfnResource):
        yield resource
